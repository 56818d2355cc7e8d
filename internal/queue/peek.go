package queue

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/qakka/qakka/internal/storage"
)

// MaxPeekLimit bounds one page of Peek.
const MaxPeekLimit = 1000

// PeekRequest selects one page of a queue's messages.
type PeekRequest struct {
	// State is "available", "delayed", "inflight" or "moving"; empty lists
	// every state in that order.
	State string
	// Cursor is the Next of the previous page, or empty for the first.
	Cursor string
	Limit  int
}

// PeekPage is one page of messages. Next is empty on the last page.
type PeekPage struct {
	Entries []PeekEntry
	Next    string
}

var peekStates = []storage.State{storage.Available, storage.Delayed, storage.Inflight, storage.Moving}

func parseState(s string) (storage.State, bool) {
	for _, st := range storage.States {
		if st.String() == s {
			return st, true
		}
	}
	return 0, false
}

// Peek lists a queue's messages as stored, without changing them. It reads
// committed state, so a message being received at the same moment may show
// in its old state.
func (e *Engine) Peek(ctx context.Context, queue string, req PeekRequest) (PeekPage, error) {
	if req.Limit < 1 || req.Limit > MaxPeekLimit {
		return PeekPage{}, invalid("limit", fmt.Sprint(req.Limit), "must be between 1 and %d", MaxPeekLimit)
	}
	states := peekStates
	if req.State != "" {
		st, ok := parseState(req.State)
		if !ok {
			return PeekPage{}, invalid("state", req.State, "use available, delayed, inflight or moving")
		}
		states = []storage.State{st}
	}
	startState, from := states[0], uint64(0)
	if req.Cursor != "" {
		name, seq, ok := strings.Cut(req.Cursor, ":")
		st, okState := parseState(name)
		n, err := strconv.ParseUint(seq, 10, 64)
		if !ok || !okState || err != nil || !slices.Contains(states, st) {
			return PeekPage{}, invalid("cursor", req.Cursor, "pass the next value of the previous page unchanged")
		}
		startState, from = st, n
	}
	if _, err := e.owner(queue); err != nil {
		return PeekPage{}, err
	}
	meta, err := e.store.Meta(ctx, queue)
	if err != nil {
		return PeekPage{}, e.storeError("read metadata", err)
	}

	var page PeekPage
	started := false
	for _, st := range states {
		if st == startState {
			started = true
		} else if !started {
			continue
		} else {
			from = 0
		}
		for _, shard := range shardsOf(&meta, st) {
			if from > 0 && meta.ShardSize > 0 && shard < storage.ShardOf(from, meta.ShardSize) {
				continue
			}
			want := req.Limit - len(page.Entries)
			entries, err := e.store.ScanShard(ctx, queue, storage.ShardRef{State: st, Shard: shard}, from, want+1)
			if err != nil {
				return PeekPage{}, e.storeError("scan entries", err)
			}
			for i := range entries {
				if len(page.Entries) == req.Limit {
					page.Next = fmt.Sprintf("%s:%d", st, entries[i].Seq)
					return page, nil
				}
				page.Entries = append(page.Entries, peekEntry(&entries[i]))
			}
		}
	}
	return page, nil
}

// shardsOf lists the shards of one state that may hold entries, in order.
func shardsOf(meta *storage.Meta, st storage.State) []uint64 {
	if meta.ShardSize == 0 || meta.NextSeq == 0 {
		return nil
	}
	var out []uint64
	if st == storage.Available {
		if meta.Head >= meta.NextSeq {
			return nil
		}
		for s := storage.ShardOf(meta.Head, meta.ShardSize); s <= storage.ShardOf(meta.NextSeq-1, meta.ShardSize); s++ {
			out = append(out, s)
		}
		return out
	}
	for _, ref := range meta.Shards {
		if ref.State == st {
			out = append(out, ref.Shard)
		}
	}
	slices.Sort(out)
	return out
}
