package cluster

import (
	"encoding/binary"

	"github.com/cespare/xxhash/v2"
)

// Owner returns the member that owns queue under rendezvous (highest random
// weight) hashing: the member of live with the highest weight, a 64-bit
// xxHash of the queue name and the member name. It returns false when live
// is empty.
//
// The result depends only on the queue name and the set of member names, not
// on their order or on the process or machine, so every node with the
// same live members picks the same owner. When a member leaves, only the
// queues it owned move. When a member joins, only the queues it now wins
// move, to it: about 1/N of all queues for N members.
func Owner(queue string, live []Member) (Member, bool) {
	if len(live) == 0 {
		return Member{}, false
	}

	var key [8 + 256]byte
	binary.LittleEndian.PutUint64(key[:8], xxhash.Sum64String(queue))

	owner := live[0]
	best := weight(key[:], owner.Name)
	for _, m := range live[1:] {
		w := weight(key[:], m.Name)
		// Equal weights are all but impossible, but the name breaks the tie
		// so that the order of live never matters.
		if w > best || (w == best && m.Name < owner.Name) {
			owner, best = m, w
		}
	}
	return owner, true
}

// weight returns the xxHash of the queue name's 8-byte hash followed by the
// member name. The fixed-width prefix keeps the pair unambiguous. buf starts
// with that prefix, and its spare capacity avoids an allocation for member
// names of up to 256 bytes.
func weight(buf []byte, member string) uint64 {
	return xxhash.Sum64(append(buf[:8], member...))
}
