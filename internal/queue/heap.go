package queue

import (
	"container/heap"
	"time"

	"github.com/qakka/qakka/internal/storage"
)

// item is an entry held in memory by its queue's owner, with its place in a
// deadline heap.
type item struct {
	entry storage.Entry
	index int
}

// dueHeap orders items by Entry.DueAt, then Seq.
type dueHeap []*item

func (h dueHeap) Len() int { return len(h) }

func (h dueHeap) Less(i, j int) bool {
	a, b := &h[i].entry, &h[j].entry
	if !a.DueAt.Equal(b.DueAt) {
		return a.DueAt.Before(b.DueAt)
	}
	return a.Seq < b.Seq
}

func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *dueHeap) Push(x any) {
	it := x.(*item)
	it.index = len(*h)
	*h = append(*h, it)
}

func (h *dueHeap) Pop() any {
	old := *h
	n := len(old)
	it := old[n-1]
	old[n-1] = nil
	it.index = -1
	*h = old[:n-1]
	return it
}

func (h *dueHeap) add(it *item) { heap.Push(h, it) }

func (h *dueHeap) remove(it *item) {
	if it.index >= 0 {
		heap.Remove(h, it.index)
	}
}

func (h *dueHeap) fix(it *item) { heap.Fix(h, it.index) }

// popDue removes and returns the earliest item if it is due at now.
func (h *dueHeap) popDue(now time.Time) *item {
	if len(*h) == 0 || (*h)[0].entry.DueAt.After(now) {
		return nil
	}
	return heap.Pop(h).(*item)
}

func (h dueHeap) next() (time.Time, bool) {
	if len(h) == 0 {
		return time.Time{}, false
	}
	return h[0].entry.DueAt, true
}
