package main

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/qakka/qakka/client"
)

// The server's 400 messages for a value out of its bounds, in the server's
// units, such as
//
//	invalid wait "3600000": must be between 0 and 20000 milliseconds
//	invalid delay "7200000": must be shorter than the message's expiration of 3600 seconds
var (
	betweenMessage = regexp.MustCompile(`^invalid (\w+) "(-?\d+)": must be between (-?\d+) and (-?\d+)(?: (milliseconds|seconds))?$`)
	shorterMessage = regexp.MustCompile(`^invalid (\w+) "(-?\d+)": must be shorter than the message's expiration of (\d+) seconds$`)
)

// flagValue ties a flag to the request field that carries its value, so
// that the server's rejection of the field can be reported in terms of the
// flag.
type flagValue struct {
	flag  string        // the flag, such as --wait
	field string        // the field's name in the server's messages, such as wait
	value int64         // the value sent, in the field's unit
	unit  time.Duration // the field's unit, or 0 for a count
}

// durationFlag describes a duration flag sent as a whole number of unit,
// which is time.Millisecond or time.Second.
func durationFlag(flag, field string, d, unit time.Duration) flagValue {
	return flagValue{flag: flag, field: field, value: int64(d / unit), unit: unit}
}

// countFlag describes a flag sent as the number it holds.
func countFlag(flag, field string, n int64) flagValue {
	return flagValue{flag: flag, field: field, value: n}
}

// format returns n, given in the field's unit, in the form the flag takes,
// such as "20s" for 20000 milliseconds.
func (f flagValue) format(n int64) string {
	if f.unit == 0 {
		return strconv.FormatInt(n, 10)
	}
	return formatDuration(time.Duration(n) * f.unit)
}

// unitWord returns the word with which the server's messages name the
// field's unit.
func (f flagValue) unitWord() string {
	switch f.unit {
	case time.Millisecond:
		return "milliseconds"
	case time.Second:
		return "seconds"
	}
	return ""
}

// rewordLimit rewrites the server's 400 for a value out of its bounds in
// terms of the flag that set the value: the server's
// `invalid wait "3600000": must be between 0 and 20000 milliseconds`
// becomes "invalid --wait 1h: the server accepts at most 20s". The bounds
// come from the server's message, not from constants here, because the
// server's limits are configurable. Other errors, and errors about a value
// that none of flags sent, come back unchanged.
func rewordLimit(err error, flags ...flagValue) error {
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest {
		return err
	}

	if m := betweenMessage.FindStringSubmatch(apiErr.Message); m != nil {
		f, ok := sentBy(flags, m[1], m[2])
		if !ok || m[5] != f.unitWord() {
			return err
		}
		if reason, ok := outOfRange(f, m[3], m[4]); ok {
			return fmt.Errorf("invalid %s %s: %s", f.flag, f.format(f.value), reason)
		}
		return err
	}

	if m := shorterMessage.FindStringSubmatch(apiErr.Message); m != nil {
		f, ok := sentBy(flags, m[1], m[2])
		secs, convErr := strconv.ParseInt(m[3], 10, 64)
		if !ok || f.unit == 0 || convErr != nil || secs > math.MaxInt64/int64(time.Second) {
			return err
		}
		expiration := formatDuration(time.Duration(secs) * time.Second)
		return fmt.Errorf("invalid %s %s: must be shorter than the message's expiration of %s", f.flag, f.format(f.value), expiration)
	}
	return err
}

// sentBy returns the flag that sent value in field, as the server's message
// names them.
func sentBy(flags []flagValue, field, value string) (flagValue, bool) {
	for _, f := range flags {
		if f.field == field && strconv.FormatInt(f.value, 10) == value {
			return f, true
		}
	}
	return flagValue{}, false
}

// outOfRange describes the bound that the flag's value broke, given the
// server's bounds low and high in the field's unit.
func outOfRange(f flagValue, low, high string) (string, bool) {
	lowN, errLow := strconv.ParseInt(low, 10, 64)
	highN, errHigh := strconv.ParseInt(high, 10, 64)
	if errLow != nil || errHigh != nil || (f.unit != 0 && highN > math.MaxInt64/int64(f.unit)-1) {
		return "", false
	}
	switch {
	case f.value > highN && f.unit != 0 && isJustUnder(time.Duration(highN)*f.unit, f.unit):
		// A bound such as 1209599999 milliseconds reads better as less
		// than 336h than as at most 335h59m59.999s.
		return "the server accepts less than " + f.format(highN+1), true
	case f.value > highN:
		return "the server accepts at most " + f.format(highN), true
	case f.value < lowN:
		return "the server accepts at least " + f.format(lowN), true
	}
	return "", false
}

// isJustUnder reports whether limit is one unit short of a whole second.
func isJustUnder(limit, unit time.Duration) bool {
	return limit%time.Second != 0 && (limit+unit)%time.Second == 0
}
