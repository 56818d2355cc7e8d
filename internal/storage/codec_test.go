package storage

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
)

// codecCase is one record type: an encoder and a decoder over any, and the
// version byte the encoder writes.
type codecCase struct {
	name      string
	version   byte
	marshal   func(v any) []byte
	unmarshal func(data []byte) (any, error)
	samples   []any
}

var (
	sampleTime = time.Date(2031, 2, 3, 4, 5, 6, 789_012_345, time.UTC)
	sampleID   = uuid.MustParse("0190f5c2-7a1e-7b3c-8d4e-5f60718293a4")
)

func codecCases() []codecCase {
	return []codecCase{
		{
			name:      "QueueConfig",
			version:   codecV1,
			marshal:   func(v any) []byte { c := v.(QueueConfig); return MarshalQueueConfig(&c) },
			unmarshal: func(b []byte) (any, error) { return UnmarshalQueueConfig(b) },
			samples: []any{
				QueueConfig{},
				QueueConfig{
					Name: "orders.v2-eu_1", VisibilityTimeout: 30 * time.Second, DefaultDelay: -time.Nanosecond,
					RetryCount: -1, DeadLetterQueue: "orders-dlq", MaxMessageSize: math.MaxInt64,
					Retention: 14 * 24 * time.Hour, ReceiveWait: time.Duration(math.MinInt64),
					Regions: "us-east,eu-west", DefaultDestinations: "ALL",
					Tags:      map[string]string{"b": "2", "a": "1", "": "", "é": "\x00"},
					CreatedAt: sampleTime, UpdatedAt: sampleTime.Add(time.Nanosecond),
				},
			},
		},
		{
			name:      "Entry",
			version:   codecV1,
			marshal:   func(v any) []byte { e := v.(Entry); return MarshalEntry(&e) },
			unmarshal: func(b []byte) (any, error) { return UnmarshalEntry(b) },
			samples: []any{
				Entry{},
				Entry{
					Queue: "q", State: Moving, Shard: math.MaxUint64, Seq: 1 << 40,
					ID: sampleID, MessageID: uuid.New(),
					CreatedAt: sampleTime, SentAt: time.Unix(0, 0).UTC(), DueAt: time.Time{},
					ExpiresAt:    time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
					ReceiveCount: math.MinInt32, ContentType: "application/json", Size: -5,
					SourceQueue: "src", TargetQueue: "dst",
				},
				Entry{CreatedAt: time.Date(-50, 1, 1, 0, 0, 0, 1, time.UTC)},
			},
		},
		{
			name:      "Payload",
			version:   codecV1,
			marshal:   func(v any) []byte { p := v.(Payload); return MarshalPayload(&p) },
			unmarshal: func(b []byte) (any, error) { return UnmarshalPayload(b) },
			samples: []any{
				Payload{},
				Payload{Queue: "q", MessageID: sampleID, ContentType: "text/plain",
					Data: []byte("hello"), Attributes: []byte{0, 0xff}, ExpiresAt: sampleTime},
				Payload{Queue: "big", Data: bytes.Repeat([]byte{7}, 1<<16)},
			},
		},
		{
			name:      "Meta",
			version:   metaV2,
			marshal:   func(v any) []byte { m := v.(Meta); return MarshalMeta(&m) },
			unmarshal: func(b []byte) (any, error) { return UnmarshalMeta(b) },
			samples: []any{
				Meta{},
				Meta{
					ShardSize: 1000, NextSeq: math.MaxUint64, Head: 7, Available: -3,
					Shards: []ShardRef{{Inflight, 0}, {Delayed, 1 << 63}, {Moving, 5}},
					Totals: Totals{Sent: 1, Received: 2, Acked: 3, Nacked: 4, TimedOut: 5,
						Expired: 6, DeadLettered: 7, Redriven: 8, Purged: math.MaxInt64},
					Inbox: map[uint64]uint64{0: 0, 7: 1 << 40, math.MaxUint64: math.MaxUint64, 3: 9},
				},
				Meta{Inbox: map[uint64]uint64{1: 2}},
			},
		},
		{
			name:      "AuditEvent",
			version:   codecV1,
			marshal:   func(v any) []byte { ev := v.(AuditEvent); return MarshalAuditEvent(&ev) },
			unmarshal: func(b []byte) (any, error) { return UnmarshalAuditEvent(b) },
			samples: []any{
				AuditEvent{},
				AuditEvent{
					MessageID: sampleID, Time: sampleTime, Seq: math.MaxUint32, Action: "dead-lettered",
					Queue: "q", QueueMessageID: uuid.New(), ReceiveCount: math.MaxInt32,
					Detail: "moved to q-dlq", ExpiresAt: sampleTime.Add(time.Hour),
				},
			},
		},
		{
			name:      "Lease",
			version:   codecV1,
			marshal:   func(v any) []byte { l := v.(Lease); return MarshalLease(&l) },
			unmarshal: func(b []byte) (any, error) { return UnmarshalLease(b) },
			samples: []any{
				Lease{},
				Lease{Queue: "orders", Owner: "node-2", Epoch: math.MaxInt64, ExpiresAt: sampleTime},
				Lease{Queue: "q", Owner: "n", Epoch: -1},
			},
		},
	}
}

func TestCodecRoundTrip(t *testing.T) {
	for _, cc := range codecCases() {
		t.Run(cc.name, func(t *testing.T) {
			for i, want := range cc.samples {
				data := cc.marshal(want)
				if data[0] != cc.version {
					t.Errorf("sample %d: version byte %d, want %d", i, data[0], cc.version)
				}
				got, err := cc.unmarshal(data)
				if err != nil {
					t.Fatalf("sample %d: unmarshal: %v", i, err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("sample %d:\n got %+v\nwant %+v", i, got, want)
				}
			}
		})
	}
}

func TestCodecTimeInLocation(t *testing.T) {
	loc := time.FixedZone("UTC+5", 5*60*60)
	in := Payload{ExpiresAt: sampleTime.In(loc)}
	got, err := UnmarshalPayload(MarshalPayload(&in))
	if err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	if !got.ExpiresAt.Equal(in.ExpiresAt) {
		t.Errorf("ExpiresAt = %v, want the instant %v", got.ExpiresAt, in.ExpiresAt)
	}
	if got.ExpiresAt.Location() != time.UTC {
		t.Errorf("ExpiresAt location = %v, want UTC", got.ExpiresAt.Location())
	}
}

func TestCodecZeroTimeSize(t *testing.T) {
	// Version, empty queue, 16-byte id, empty content type, empty data and
	// attributes, and two bytes of zero time.
	got := len(MarshalPayload(&Payload{}))
	if want := 1 + 1 + 16 + 1 + 1 + 1 + 2; got != want {
		t.Errorf("empty payload encodes to %d bytes, want %d", got, want)
	}
}

// metaV1 is a Meta as version 1 of the encoding wrote it, before Inbox.
var metaV1 = []byte{
	0x01,                         // version
	0xe8, 0x07, 0xe1, 0x21, 0xd2, // ShardSize 1000, NextSeq 4321
	0x09, 0x05, // Head 1234, Available -3
	0x02, 0x02, 0x01, 0x04, 0xac, 0x02, // Shards: inflight 1, moving 300
	0x02, 0x04, 0x06, 0x08, 0x0a, 0x0c, 0x0e, 0x10, 0x12, // Totals 1 to 9
}

func TestCodecReadsMetaV1(t *testing.T) {
	got, err := UnmarshalMeta(metaV1)
	if err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	want := Meta{
		ShardSize: 1000, NextSeq: 4321, Head: 1234, Available: -3,
		Shards: []ShardRef{{Inflight, 1}, {Moving, 300}},
		Totals: Totals{Sent: 1, Received: 2, Acked: 3, Nacked: 4, TimedOut: 5,
			Expired: 6, DeadLettered: 7, Redriven: 8, Purged: 9},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("version 1 meta:\n got %+v\nwant %+v", got, want)
	}

	// Re-encoding writes version 2, with an empty Inbox after Totals.
	again := MarshalMeta(&got)
	if again[0] != metaV2 {
		t.Errorf("re-encoded version byte %d, want %d", again[0], metaV2)
	}
	if !bytes.Equal(again[1:], append(metaV1[1:len(metaV1):len(metaV1)], 0)) {
		t.Errorf("re-encoded meta %x, want the version 1 fields and an empty inbox", again)
	}
}

func TestCodecRejectsInboxInMetaV1(t *testing.T) {
	// A version 1 record ends after Totals, so an inbox there is trailing
	// garbage.
	data := append(append([]byte(nil), metaV1...), 0x01, 0x02, 0x03)
	if _, err := UnmarshalMeta(data); !errors.Is(err, ErrCorrupt) {
		t.Errorf("error = %v, want ErrCorrupt", err)
	}
}

func TestCodecDecodeDoesNotRetainInput(t *testing.T) {
	in := Payload{Queue: "q", Data: []byte("data"), Attributes: []byte("attrs")}
	data := MarshalPayload(&in)
	got, err := UnmarshalPayload(data)
	if err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	for i := range data {
		data[i] = 0xee
	}
	if string(got.Data) != "data" || string(got.Attributes) != "attrs" || got.Queue != "q" {
		t.Errorf("decoded payload changed with its input: %+v", got)
	}
}

func TestCodecRejectsTruncated(t *testing.T) {
	for _, cc := range codecCases() {
		t.Run(cc.name, func(t *testing.T) {
			for i, v := range cc.samples {
				data := cc.marshal(v)
				for n := range len(data) {
					if _, err := cc.unmarshal(data[:n]); !errors.Is(err, ErrCorrupt) {
						t.Fatalf("sample %d cut to %d of %d bytes: error = %v, want ErrCorrupt", i, n, len(data), err)
					}
				}
			}
		})
	}
}

func TestCodecRejectsTrailingBytes(t *testing.T) {
	for _, cc := range codecCases() {
		t.Run(cc.name, func(t *testing.T) {
			data := append(cc.marshal(cc.samples[len(cc.samples)-1]), 0)
			if _, err := cc.unmarshal(data); !errors.Is(err, ErrCorrupt) {
				t.Errorf("error = %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestCodecRejectsUnknownVersion(t *testing.T) {
	for _, cc := range codecCases() {
		t.Run(cc.name, func(t *testing.T) {
			for _, v := range []byte{0, cc.version + 1, 0xff} {
				data := cc.marshal(cc.samples[0])
				data[0] = v
				if _, err := cc.unmarshal(data); !errors.Is(err, ErrCorrupt) {
					t.Errorf("version %d: error = %v, want ErrCorrupt", v, err)
				}
			}
		})
	}
}

func TestCodecRejectsInvalidFields(t *testing.T) {
	tests := []struct {
		name      string
		data      []byte
		unmarshal func([]byte) (any, error)
	}{
		{
			// A queue name claiming 2^62 bytes.
			name:      "huge string length",
			data:      []byte{codecV1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40},
			unmarshal: func(b []byte) (any, error) { return UnmarshalEntry(b) },
		},
		{
			name:      "huge shard count",
			data:      []byte{codecV1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
			unmarshal: func(b []byte) (any, error) { return UnmarshalMeta(b) },
		},
		{
			// Version 2, zero fields, no shards, zero totals, then an
			// inbox claiming 2^32 pairs.
			name: "huge inbox count",
			data: append(append([]byte{metaV2, 0, 0, 0, 0, 0}, make([]byte, 9)...),
				0x80, 0x80, 0x80, 0x80, 0x10),
			unmarshal: func(b []byte) (any, error) { return UnmarshalMeta(b) },
		},
		{
			name:      "overlong uvarint",
			data:      append([]byte{codecV1}, bytes.Repeat([]byte{0xff}, 11)...),
			unmarshal: func(b []byte) (any, error) { return UnmarshalMeta(b) },
		},
		{
			name: "nanoseconds out of range",
			// Empty queue, zero id, empty content type, data and
			// attributes, then 1 second and 10^9 nanoseconds.
			data: append(append([]byte{codecV1, 0}, make([]byte, 16)...),
				0, 0, 0, 2, 0x80, 0x94, 0xeb, 0xdc, 0x03),
			unmarshal: func(b []byte) (any, error) { return UnmarshalPayload(b) },
		},
		{
			name: "audit seq above uint32",
			data: append(append([]byte{codecV1}, make([]byte, 16)...),
				0, 0, 0x80, 0x80, 0x80, 0x80, 0x10),
			unmarshal: func(b []byte) (any, error) { return UnmarshalAuditEvent(b) },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.unmarshal(tc.data); !errors.Is(err, ErrCorrupt) {
				t.Errorf("error = %v, want ErrCorrupt", err)
			}
		})
	}
}

// fuzzDecoder checks that unmarshal never panics and that whatever it
// accepts survives another round trip unchanged.
func fuzzDecoder(f *testing.F, name string) {
	var cc codecCase
	for _, c := range codecCases() {
		if c.name == name {
			cc = c
		}
	}
	for _, v := range cc.samples {
		data := cc.marshal(v)
		f.Add(data)
		f.Add(data[:len(data)/2])
	}
	f.Add([]byte{})
	f.Add([]byte{codecV1})
	f.Add([]byte{cc.version})

	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := cc.unmarshal(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		again, err := cc.unmarshal(cc.marshal(v))
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if !reflect.DeepEqual(again, v) {
			t.Fatalf("round trip changed the record:\n got %+v\nwant %+v", again, v)
		}
	})
}

func FuzzUnmarshalQueueConfig(f *testing.F) { fuzzDecoder(f, "QueueConfig") }
func FuzzUnmarshalEntry(f *testing.F)       { fuzzDecoder(f, "Entry") }
func FuzzUnmarshalPayload(f *testing.F)     { fuzzDecoder(f, "Payload") }
func FuzzUnmarshalAuditEvent(f *testing.F)  { fuzzDecoder(f, "AuditEvent") }
func FuzzUnmarshalLease(f *testing.F)       { fuzzDecoder(f, "Lease") }

func FuzzUnmarshalMeta(f *testing.F) {
	f.Add(metaV1)
	fuzzDecoder(f, "Meta")
}
