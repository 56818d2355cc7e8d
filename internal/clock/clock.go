// Package clock lets time-driven code run on the real clock in production and
// on a manually advanced clock in tests.
package clock

import (
	"sync"
	"time"
)

// Clock reports the current time and makes timers.
type Clock interface {
	Now() time.Time
	// NewTimer returns a stopped timer; Reset arms it.
	NewTimer() Timer
}

// Timer delivers one tick on C after the duration given to Reset, or at the
// deadline given to ResetAt.
type Timer interface {
	C() <-chan time.Time
	// Reset arms the timer to fire after d, replacing any earlier deadline.
	// A tick already waiting on C is drained first.
	Reset(d time.Duration)
	// ResetAt arms the timer to fire when the clock reaches deadline. Unlike
	// Reset with a computed duration, the deadline cannot drift if the clock
	// moves between reading it and arming the timer. A waiting tick is
	// drained first, as with Reset.
	ResetAt(deadline time.Time)
	Stop()
}

// Real is the system clock.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// NewTimer returns a stopped timer on the system clock.
func (Real) NewTimer() Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return realTimer{t}
}

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time { return r.t.C }

func (r realTimer) Reset(d time.Duration) {
	// Since Go 1.23 Reset discards a tick that has not been received.
	r.t.Reset(d)
}

func (r realTimer) ResetAt(deadline time.Time) { r.t.Reset(time.Until(deadline)) }

func (r realTimer) Stop() { r.t.Stop() }

// Fake is a clock that moves only when Advance or Set is called. It is safe
// for concurrent use.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

// NewFake returns a fake clock reading start.
func NewFake(start time.Time) *Fake {
	return &Fake{now: start}
}

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Advance moves the clock forward by d and fires every timer that is due.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	now := f.now
	timers := append([]*fakeTimer(nil), f.timers...)
	f.mu.Unlock()

	for _, t := range timers {
		t.fireIfDue(now)
	}
}

// NewTimer returns a stopped timer on the fake clock.
func (f *Fake) NewTimer() Timer {
	t := &fakeTimer{clock: f, c: make(chan time.Time, 1)}
	f.mu.Lock()
	f.timers = append(f.timers, t)
	f.mu.Unlock()
	return t
}

type fakeTimer struct {
	clock *Fake
	c     chan time.Time

	mu    sync.Mutex
	armed bool
	due   time.Time
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Reset(d time.Duration) {
	t.ResetAt(t.clock.Now().Add(d))
}

func (t *fakeTimer) ResetAt(deadline time.Time) {
	t.mu.Lock()
	select {
	case <-t.c:
	default:
	}
	t.armed = true
	t.due = deadline
	t.mu.Unlock()
	t.fireIfDue(t.clock.Now())
}

func (t *fakeTimer) Stop() {
	t.mu.Lock()
	t.armed = false
	t.mu.Unlock()
}

func (t *fakeTimer) fireIfDue(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.armed || now.Before(t.due) {
		return
	}
	t.armed = false
	select {
	case t.c <- now:
	default:
	}
}
