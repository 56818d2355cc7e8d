package clock_test

import (
	"testing"
	"time"

	"github.com/qakka/qakka/internal/clock"
)

func fired(timer clock.Timer) bool {
	select {
	case <-timer.C():
		return true
	default:
		return false
	}
}

func TestFakeTimerResetAt(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fake := clock.NewFake(start)
	timer := fake.NewTimer()

	timer.ResetAt(start.Add(10 * time.Second))
	fake.Advance(9 * time.Second)
	if fired(timer) {
		t.Fatal("timer fired a second early")
	}
	fake.Advance(time.Second)
	if !fired(timer) {
		t.Fatal("timer did not fire at its deadline")
	}

	// A deadline the clock has already passed fires at once, however late
	// the timer is armed.
	timer.ResetAt(start.Add(5 * time.Second))
	if !fired(timer) {
		t.Fatal("timer armed with a past deadline did not fire")
	}
}

func TestFakeTimerReset(t *testing.T) {
	fake := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	timer := fake.NewTimer()
	timer.Reset(time.Second)
	timer.Stop()
	fake.Advance(time.Hour)
	if fired(timer) {
		t.Fatal("stopped timer fired")
	}
	timer.Reset(time.Minute)
	fake.Advance(time.Minute)
	if !fired(timer) {
		t.Fatal("timer did not fire after its duration")
	}
}

func TestRealTimerResetAt(t *testing.T) {
	timer := clock.Real{}.NewTimer()
	defer timer.Stop()
	timer.ResetAt(time.Now().Add(-time.Second))
	select {
	case <-timer.C():
	case <-time.After(10 * time.Second):
		t.Fatal("real timer armed with a past deadline did not fire")
	}
}
