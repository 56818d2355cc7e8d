package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/google/uuid"
)

// The record encoding is shared by the backends that store records as opaque
// values. Each record is one version byte followed by its fields in a fixed
// order:
//
//   - unsigned integers are uvarints and signed integers (durations included)
//     are zigzag varints;
//   - strings and byte slices are a uvarint length and the bytes;
//   - UUIDs are their 16 bytes;
//   - times are a zigzag varint of whole seconds since January 1 of year 1 UTC
//     and a uvarint of nanoseconds, so the zero time takes two bytes;
//   - maps are a uvarint count and the pairs, sorted by key.
//
// A record encodes every field, its key fields included. Decoded times are in
// UTC, and empty slices and maps decode as nil. A change to a record's fields
// gets a new version byte, and decoders keep reading the older versions:
//
//   - version 1 is the first encoding of every record;
//   - version 2 of Meta appends Inbox after Totals.

// ErrCorrupt is wrapped by every error of the Unmarshal functions: the input is
// truncated, has trailing bytes, an unknown version or an invalid field.
var ErrCorrupt = errors.New("corrupt record")

// Version bytes. Every record but Meta is written at codecV1, and Meta at
// metaV2.
const (
	codecV1 = 1
	metaV2  = 2
)

// secondsToUnix is the number of seconds from January 1 of year 1 to the
// Unix epoch. Times are stored relative to year 1 so the zero time is 0.
const secondsToUnix = 62135596800

// MarshalQueueConfig encodes c.
func MarshalQueueConfig(c *QueueConfig) []byte {
	e := encoder{buf: make([]byte, 0, 64+len(c.Name)+len(c.DeadLetterQueue))}
	e.byte(codecV1)
	e.string(c.Name)
	e.varint(int64(c.VisibilityTimeout))
	e.varint(int64(c.DefaultDelay))
	e.varint(int64(c.RetryCount))
	e.string(c.DeadLetterQueue)
	e.varint(c.MaxMessageSize)
	e.varint(int64(c.Retention))
	e.varint(int64(c.ReceiveWait))
	e.string(c.Regions)
	e.string(c.DefaultDestinations)
	e.stringMap(c.Tags)
	e.time(c.CreatedAt)
	e.time(c.UpdatedAt)
	return e.buf
}

// UnmarshalQueueConfig decodes a configuration written by MarshalQueueConfig.
// It does not retain data.
func UnmarshalQueueConfig(data []byte) (QueueConfig, error) {
	d := decoder{data: data}
	d.version(codecV1)
	c := QueueConfig{
		Name:              d.string(),
		VisibilityTimeout: time.Duration(d.varint()),
		DefaultDelay:      time.Duration(d.varint()),
		RetryCount:        d.int(),
		DeadLetterQueue:   d.string(),
		MaxMessageSize:    d.varint(),
		Retention:         time.Duration(d.varint()),
		ReceiveWait:       time.Duration(d.varint()),
	}
	c.Regions = d.string()
	c.DefaultDestinations = d.string()
	c.Tags = d.stringMap()
	c.CreatedAt = d.time()
	c.UpdatedAt = d.time()
	if err := d.finish("queue config"); err != nil {
		return QueueConfig{}, err
	}
	return c, nil
}

// MarshalEntry encodes en.
func MarshalEntry(en *Entry) []byte {
	e := encoder{buf: make([]byte, 0, 96+len(en.Queue)+len(en.ContentType))}
	e.byte(codecV1)
	e.string(en.Queue)
	e.byte(byte(en.State))
	e.uvarint(en.Shard)
	e.uvarint(en.Seq)
	e.uuid(en.ID)
	e.uuid(en.MessageID)
	e.time(en.CreatedAt)
	e.time(en.SentAt)
	e.time(en.DueAt)
	e.time(en.ExpiresAt)
	e.varint(int64(en.ReceiveCount))
	e.string(en.ContentType)
	e.varint(en.Size)
	e.string(en.SourceQueue)
	e.string(en.TargetQueue)
	return e.buf
}

// UnmarshalEntry decodes an entry written by MarshalEntry. It does not retain
// data.
func UnmarshalEntry(data []byte) (Entry, error) {
	d := decoder{data: data}
	d.version(codecV1)
	en := Entry{
		Queue:     d.string(),
		State:     State(d.byte()),
		Shard:     d.uvarint(),
		Seq:       d.uvarint(),
		ID:        d.uuid(),
		MessageID: d.uuid(),
		CreatedAt: d.time(),
		SentAt:    d.time(),
		DueAt:     d.time(),
		ExpiresAt: d.time(),
	}
	en.ReceiveCount = d.int32()
	en.ContentType = d.string()
	en.Size = d.varint()
	en.SourceQueue = d.string()
	en.TargetQueue = d.string()
	if err := d.finish("entry"); err != nil {
		return Entry{}, err
	}
	return en, nil
}

// MarshalPayload encodes p.
func MarshalPayload(p *Payload) []byte {
	e := encoder{buf: make([]byte, 0, 48+len(p.Queue)+len(p.ContentType)+len(p.Data)+len(p.Attributes))}
	e.byte(codecV1)
	e.string(p.Queue)
	e.uuid(p.MessageID)
	e.string(p.ContentType)
	e.bytes(p.Data)
	e.bytes(p.Attributes)
	e.time(p.ExpiresAt)
	return e.buf
}

// UnmarshalPayload decodes a payload written by MarshalPayload. It copies the
// data and attributes, so it does not retain data.
func UnmarshalPayload(data []byte) (Payload, error) {
	d := decoder{data: data}
	d.version(codecV1)
	p := Payload{
		Queue:       d.string(),
		MessageID:   d.uuid(),
		ContentType: d.string(),
		Data:        d.bytes(),
		Attributes:  d.bytes(),
		ExpiresAt:   d.time(),
	}
	if err := d.finish("payload"); err != nil {
		return Payload{}, err
	}
	return p, nil
}

// MarshalMeta encodes m at version 2.
func MarshalMeta(m *Meta) []byte {
	e := encoder{buf: make([]byte, 0, 64+len(m.Shards)*4+len(m.Inbox)*8)}
	e.byte(metaV2)
	e.uvarint(m.ShardSize)
	e.uvarint(m.NextSeq)
	e.uvarint(m.Head)
	e.varint(m.Available)
	e.uvarint(uint64(len(m.Shards)))
	for _, r := range m.Shards {
		e.byte(byte(r.State))
		e.uvarint(r.Shard)
	}
	t := &m.Totals
	for _, v := range []int64{t.Sent, t.Received, t.Acked, t.Nacked, t.TimedOut,
		t.Expired, t.DeadLettered, t.Redriven, t.Purged} {
		e.varint(v)
	}
	e.uint64Map(m.Inbox)
	return e.buf
}

// UnmarshalMeta decodes metadata written by MarshalMeta, at version 1 (which
// has no Inbox) or 2. It does not retain data.
func UnmarshalMeta(data []byte) (Meta, error) {
	d := decoder{data: data}
	version := d.version(metaV2)
	m := Meta{
		ShardSize: d.uvarint(),
		NextSeq:   d.uvarint(),
		Head:      d.uvarint(),
		Available: d.varint(),
	}

	// Each shard takes at least two bytes.
	if n := d.count(2); n > 0 {
		m.Shards = make([]ShardRef, n)
		for i := range m.Shards {
			m.Shards[i] = ShardRef{State: State(d.byte()), Shard: d.uvarint()}
		}
	}

	t := &m.Totals
	for _, v := range []*int64{&t.Sent, &t.Received, &t.Acked, &t.Nacked, &t.TimedOut,
		&t.Expired, &t.DeadLettered, &t.Redriven, &t.Purged} {
		*v = d.varint()
	}
	if version >= metaV2 {
		m.Inbox = d.uint64Map()
	}
	if err := d.finish("meta"); err != nil {
		return Meta{}, err
	}
	return m, nil
}

// MarshalAuditEvent encodes ev.
func MarshalAuditEvent(ev *AuditEvent) []byte {
	e := encoder{buf: make([]byte, 0, 80+len(ev.Action)+len(ev.Queue)+len(ev.Detail))}
	e.byte(codecV1)
	e.uuid(ev.MessageID)
	e.time(ev.Time)
	e.uvarint(uint64(ev.Seq))
	e.string(ev.Action)
	e.string(ev.Queue)
	e.uuid(ev.QueueMessageID)
	e.varint(int64(ev.ReceiveCount))
	e.string(ev.Detail)
	e.time(ev.ExpiresAt)
	return e.buf
}

// UnmarshalAuditEvent decodes an event written by MarshalAuditEvent. It does
// not retain data.
func UnmarshalAuditEvent(data []byte) (AuditEvent, error) {
	d := decoder{data: data}
	d.version(codecV1)
	ev := AuditEvent{
		MessageID:      d.uuid(),
		Time:           d.time(),
		Seq:            d.uint32(),
		Action:         d.string(),
		Queue:          d.string(),
		QueueMessageID: d.uuid(),
		ReceiveCount:   d.int32(),
		Detail:         d.string(),
		ExpiresAt:      d.time(),
	}
	if err := d.finish("audit event"); err != nil {
		return AuditEvent{}, err
	}
	return ev, nil
}

// MarshalLease encodes l.
func MarshalLease(l *Lease) []byte {
	e := encoder{buf: make([]byte, 0, 24+len(l.Queue)+len(l.Owner))}
	e.byte(codecV1)
	e.string(l.Queue)
	e.string(l.Owner)
	e.varint(l.Epoch)
	e.time(l.ExpiresAt)
	return e.buf
}

// UnmarshalLease decodes a lease written by MarshalLease. It does not retain
// data.
func UnmarshalLease(data []byte) (Lease, error) {
	d := decoder{data: data}
	d.version(codecV1)
	l := Lease{
		Queue:     d.string(),
		Owner:     d.string(),
		Epoch:     d.varint(),
		ExpiresAt: d.time(),
	}
	if err := d.finish("lease"); err != nil {
		return Lease{}, err
	}
	return l, nil
}

// encoder appends fields to buf.
type encoder struct {
	buf []byte
}

func (e *encoder) byte(b byte)       { e.buf = append(e.buf, b) }
func (e *encoder) uvarint(v uint64)  { e.buf = binary.AppendUvarint(e.buf, v) }
func (e *encoder) varint(v int64)    { e.buf = binary.AppendVarint(e.buf, v) }
func (e *encoder) uuid(id uuid.UUID) { e.buf = append(e.buf, id[:]...) }
func (e *encoder) bytes(b []byte)    { e.uvarint(uint64(len(b))); e.buf = append(e.buf, b...) }
func (e *encoder) string(s string)   { e.uvarint(uint64(len(s))); e.buf = append(e.buf, s...) }
func (e *encoder) time(tm time.Time) {
	e.varint(tm.Unix() + secondsToUnix)
	e.uvarint(uint64(tm.Nanosecond()))
}

func (e *encoder) uint64Map(m map[uint64]uint64) {
	keys := slices.Sorted(maps.Keys(m))
	e.uvarint(uint64(len(keys)))
	for _, k := range keys {
		e.uvarint(k)
		e.uvarint(m[k])
	}
}

func (e *encoder) stringMap(m map[string]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)

	e.uvarint(uint64(len(keys)))
	for _, k := range keys {
		e.string(k)
		e.string(m[k])
	}
}

// decoder reads fields from data. After the first error every read returns a
// zero value, so callers check err once, in finish.
type decoder struct {
	data []byte
	err  error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
}

// version reads the version byte and accepts versions 1 to latest.
func (d *decoder) version(latest byte) byte {
	v := d.byte()
	if d.err == nil && (v < codecV1 || v > latest) {
		d.fail("unknown version %d", v)
	}
	return v
}

// finish returns the first error, or an error when bytes are left over.
func (d *decoder) finish(record string) error {
	if d.err == nil && len(d.data) > 0 {
		d.fail("%d trailing bytes", len(d.data))
	}
	if d.err != nil {
		return fmt.Errorf("decode %s: %w: %v", record, ErrCorrupt, d.err)
	}
	return nil
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.data) == 0 {
		d.fail("truncated")
		return 0
	}
	b := d.data[0]
	d.data = d.data[1:]
	return b
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.data)
	if n <= 0 {
		d.fail("truncated or overlong uvarint")
		return 0
	}
	d.data = d.data[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.data)
	if n <= 0 {
		d.fail("truncated or overlong varint")
		return 0
	}
	d.data = d.data[n:]
	return v
}

func (d *decoder) int() int {
	v := d.varint()
	if v < math.MinInt || v > math.MaxInt {
		d.fail("integer %d out of range", v)
		return 0
	}
	return int(v)
}

func (d *decoder) int32() int32 {
	v := d.varint()
	if v < math.MinInt32 || v > math.MaxInt32 {
		d.fail("int32 %d out of range", v)
		return 0
	}
	return int32(v)
}

func (d *decoder) uint32() uint32 {
	v := d.uvarint()
	if v > math.MaxUint32 {
		d.fail("uint32 %d out of range", v)
		return 0
	}
	return uint32(v)
}

// count reads a number of elements that take at least minSize bytes each and
// rejects counts the remaining input cannot hold, so garbage never causes a
// large allocation.
func (d *decoder) count(minSize int) int {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.data)/minSize) {
		d.fail("count %d exceeds the %d bytes left", n, len(d.data))
		return 0
	}
	return int(n)
}

// raw returns the next n bytes of data without copying them.
func (d *decoder) raw(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.data) {
		d.fail("truncated: %d bytes needed, %d left", n, len(d.data))
		return nil
	}
	b := d.data[:n:n]
	d.data = d.data[n:]
	return b
}

func (d *decoder) bytes() []byte {
	n := d.count(1)
	if n == 0 {
		return nil
	}
	return slices.Clone(d.raw(n))
}

func (d *decoder) string() string {
	return string(d.raw(d.count(1)))
}

func (d *decoder) uuid() uuid.UUID {
	var id uuid.UUID
	copy(id[:], d.raw(len(id)))
	return id
}

func (d *decoder) time() time.Time {
	sec := d.varint()
	nsec := d.uvarint()
	if d.err != nil {
		return time.Time{}
	}
	if nsec >= uint64(time.Second) {
		d.fail("nanoseconds %d out of range", nsec)
		return time.Time{}
	}
	if sec == 0 && nsec == 0 {
		return time.Time{}
	}
	return time.Unix(sec-secondsToUnix, int64(nsec)).UTC()
}

func (d *decoder) stringMap() map[string]string {
	// Each pair takes at least two bytes: two empty strings.
	n := d.count(2)
	if n == 0 {
		return nil
	}
	m := make(map[string]string, n)
	for range n {
		k := d.string()
		m[k] = d.string()
	}
	if d.err != nil {
		return nil
	}
	return m
}

func (d *decoder) uint64Map() map[uint64]uint64 {
	// Each pair takes at least two bytes: two one-byte uvarints.
	n := d.count(2)
	if n == 0 {
		return nil
	}
	m := make(map[uint64]uint64, n)
	for range n {
		k := d.uvarint()
		m[k] = d.uvarint()
	}
	if d.err != nil {
		return nil
	}
	return m
}
