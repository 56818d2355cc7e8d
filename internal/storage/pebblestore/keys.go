package pebblestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/qakka/qakka/internal/storage"
)

// Key spaces. The first byte of every key names its space; doc.go describes
// the rest of each key.
const (
	spaceConfig      byte = 0x01
	spaceMeta        byte = 0x02
	spaceEntry       byte = 0x03
	spacePayload     byte = 0x04
	spaceAudit       byte = 0x05
	spaceAuditExpiry byte = 0x06
	spaceLease       byte = 0x07
)

// Key lengths past the queue name, in bytes.
const (
	entrySuffixLen = 1 + 8 + 8 // state, shard, seq
	auditKeyLen    = 1 + 16 + 8 + 4
	expiryKeyLen   = 1 + 8 + 16 + 8 + 4
)

// checkQueueName rejects the names the key layout cannot hold: an empty name
// and names with a NUL byte, which terminates names in keys.
func checkQueueName(name string) error {
	if name == "" {
		return errors.New("empty queue name")
	}
	if strings.IndexByte(name, 0) >= 0 {
		return fmt.Errorf("queue name %q contains a NUL byte", name)
	}
	return nil
}

// queuePrefix returns space, name and the terminating NUL. No queue's prefix
// is a prefix of another queue's keys, because names contain no NUL.
func queuePrefix(space byte, queue string, extra int) []byte {
	k := make([]byte, 0, 1+len(queue)+1+extra)
	k = append(k, space)
	k = append(k, queue...)
	return append(k, 0)
}

func configKey(queue string) []byte { return queuePrefix(spaceConfig, queue, 0) }

func metaKey(queue string) []byte { return queuePrefix(spaceMeta, queue, 0) }

func leaseKey(queue string) []byte { return queuePrefix(spaceLease, queue, 0) }

// statePrefix returns the prefix of every entry key of one state of a queue.
func statePrefix(queue string, state storage.State) []byte {
	k := queuePrefix(spaceEntry, queue, entrySuffixLen)
	return append(k, byte(state))
}

// shardPrefix returns the prefix of every entry key of one shard.
func shardPrefix(queue string, ref storage.ShardRef) []byte {
	return binary.BigEndian.AppendUint64(statePrefix(queue, ref.State), ref.Shard)
}

// entryShard returns the shard of an entry key that starts with a state
// prefix of prefixLen bytes.
func entryShard(key []byte, prefixLen int) (uint64, error) {
	if len(key) != prefixLen+16 {
		return 0, fmt.Errorf("entry key of %d bytes, want %d", len(key), prefixLen+16)
	}
	return binary.BigEndian.Uint64(key[prefixLen:]), nil
}

func entryKey(k storage.EntryKey) []byte {
	key := shardPrefix(k.Queue, storage.ShardRef{State: k.State, Shard: k.Shard})
	return binary.BigEndian.AppendUint64(key, k.Seq)
}

// entrySeq returns the Seq of an entry key that starts with a shard prefix of
// prefixLen bytes.
func entrySeq(key []byte, prefixLen int) (uint64, error) {
	if len(key) != prefixLen+8 {
		return 0, fmt.Errorf("entry key of %d bytes, want %d", len(key), prefixLen+8)
	}
	return binary.BigEndian.Uint64(key[prefixLen:]), nil
}

func payloadKey(k storage.PayloadKey) []byte {
	key := queuePrefix(spacePayload, k.Queue, 16)
	return append(key, k.MessageID[:]...)
}

func auditPrefix(messageID uuid.UUID) []byte {
	k := make([]byte, 0, auditKeyLen)
	k = append(k, spaceAudit)
	return append(k, messageID[:]...)
}

// auditKey sorts the events of a message by time, then by Seq.
func auditKey(ev *storage.AuditEvent) []byte {
	k := auditPrefix(ev.MessageID)
	k = binary.BigEndian.AppendUint64(k, keyTime(ev.Time))
	return binary.BigEndian.AppendUint32(k, ev.Seq)
}

// expiryKey indexes an audit event by its expiry. The part after the expiry
// time is the event's audit key without its space byte.
func expiryKey(ev *storage.AuditEvent) []byte {
	k := make([]byte, 0, expiryKeyLen)
	k = append(k, spaceAuditExpiry)
	k = binary.BigEndian.AppendUint64(k, keyTime(ev.ExpiresAt))
	return append(k, auditKey(ev)[1:]...)
}

// expiryBound returns the first expiry key at or after t. Keys below it
// belong to events that expired before t.
func expiryBound(t time.Time) []byte {
	k := make([]byte, 0, 9)
	k = append(k, spaceAuditExpiry)
	return binary.BigEndian.AppendUint64(k, keyTime(t))
}

// auditKeyOfExpiry returns the audit key an expiry key points to.
func auditKeyOfExpiry(k []byte) ([]byte, error) {
	if len(k) != expiryKeyLen || k[0] != spaceAuditExpiry {
		return nil, fmt.Errorf("invalid audit expiry key %x", k)
	}
	ak := make([]byte, 0, auditKeyLen)
	ak = append(ak, spaceAudit)
	return append(ak, k[9:]...), nil
}

// Times in keys are Unix nanoseconds with the sign bit flipped, so that
// big-endian byte order is time order. Times before 1678 or after 2262 do not
// fit and are clamped to the first or last key time.
var (
	minKeyTime = time.Unix(0, math.MinInt64)
	maxKeyTime = time.Unix(0, math.MaxInt64)
)

func keyTime(t time.Time) uint64 {
	switch {
	case t.Before(minKeyTime):
		return 0
	case t.After(maxKeyTime):
		return math.MaxUint64
	default:
		return uint64(t.UnixNano()) ^ (1 << 63)
	}
}

// prefixEnd returns the smallest key greater than every key that starts with
// prefix, or nil when there is none (a prefix of 0xff bytes only).
func prefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
