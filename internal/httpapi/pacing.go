package httpapi

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/parley-voice/parley/internal/store"
)

// A campaign's pacing (Parley extension): how many calls at once, how fast
// they start, how often a lead is tried and on which days. Unset (nil) means
// the default; the dialer reads it the same way.
const (
	defaultMaxConcurrentCalls = 10
	defaultCallsPerSecond     = 1.0
	defaultMaxAttempts        = 3
	defaultRetryDelaySeconds  = 1800
)

// weekdays are the stored spellings of days_of_week, Monday first, and the
// full names accepted for them.
func weekdays() (short, full [7]string) {
	return [7]string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"},
		[7]string{"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}
}

// readPacing applies the pacing members of a campaign create or PATCH body
// to c, recording a problem per member. A member sent as null returns to its
// default; days_of_week is read case-insensitively, short or full names,
// and stored as unique short names Monday first ([] or null: every day).
func readPacing(fs *fields, c *store.Campaign) {
	ints := []struct {
		key     string
		lo, hi  int
		dst     **int
		example string
	}{
		{"max_concurrent_calls", 1, 1000, &c.MaxConcurrentCalls, ""},
		{"max_attempts", 1, 10, &c.MaxAttempts, ""},
		{"retry_delay_seconds", 1, 604800, &c.RetryDelaySeconds, " (a week)"},
	}
	for _, t := range ints {
		raw, ok := fs.raw(t.key)
		if !ok {
			continue
		}
		if isNull(raw) {
			*t.dst = nil
			continue
		}
		n, ok := jsonNumber(raw)
		if !ok {
			fs.f.Invalidf(t.key, "must be an integer from %d to %d%s, or null for the default", t.lo, t.hi, t.example)
			continue
		}
		v, err := strconv.Atoi(n.String())
		if err != nil || v < t.lo || v > t.hi {
			fs.f.Invalidf(t.key, "must be an integer from %d to %d%s, or null for the default (got %s)", t.lo, t.hi, t.example, n)
			continue
		}
		*t.dst = &v
	}
	if raw, ok := fs.raw("calls_per_second"); ok {
		n, isNum := jsonNumber(raw)
		switch {
		case isNull(raw):
			c.CallsPerSecond = nil
		case !isNum:
			fs.f.Invalidf("calls_per_second", "must be a number from 0.01 to 100, or null for the default")
		default:
			v, err := strconv.ParseFloat(n.String(), 64)
			if err != nil || v < 0.01 || v > 100 {
				fs.f.Invalidf("calls_per_second", "must be a number from 0.01 to 100, or null for the default (got %s)", n)
				break
			}
			c.CallsPerSecond = &v
		}
	}
	if raw, ok := fs.raw("days_of_week"); ok {
		var names []string
		if isNull(raw) {
			c.DaysOfWeek = nil
		} else if err := json.Unmarshal(raw, &names); err != nil {
			fs.f.Invalidf("days_of_week", `must be an array of weekdays such as ["mon", "tue"], or null for every day`)
		} else {
			var on [7]bool
			valid := true
			for _, name := range names {
				d := weekdayIndex(name)
				if d < 0 {
					fs.f.Invalidf("days_of_week", "must hold weekdays: mon, tue, wed, thu, fri, sat, sun or their full names (got %q)", name)
					valid = false
					continue
				}
				on[d] = true
			}
			if valid {
				short, _ := weekdays()
				c.DaysOfWeek = nil
				for d, set := range on {
					if set {
						c.DaysOfWeek = append(c.DaysOfWeek, short[d])
					}
				}
			}
		}
	}
}

// jsonNumber reads a JSON number; a string, even of digits, is none.
func jsonNumber(raw json.RawMessage) (json.Number, bool) {
	var v any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return "", false
	}
	n, ok := v.(json.Number)
	return n, ok
}

// weekdayIndex is the Monday-first index of a weekday name, short or full in
// any case; -1 when name is none.
func weekdayIndex(name string) int {
	name = strings.ToLower(strings.TrimSpace(name))
	short, full := weekdays()
	for i := range short {
		if name == short[i] || name == full[i] {
			return i
		}
	}
	return -1
}

// pacingObject renders a campaign's effective pacing, defaults filled in.
func pacingObject(c *store.Campaign, out map[string]any) {
	out["max_concurrent_calls"] = orDefault(c.MaxConcurrentCalls, defaultMaxConcurrentCalls)
	out["calls_per_second"] = orDefault(c.CallsPerSecond, defaultCallsPerSecond)
	out["max_attempts"] = orDefault(c.MaxAttempts, defaultMaxAttempts)
	out["retry_delay_seconds"] = orDefault(c.RetryDelaySeconds, defaultRetryDelaySeconds)
	days := []string{}
	if len(c.DaysOfWeek) > 0 {
		days = c.DaysOfWeek
	}
	out["days_of_week"] = days
}

func orDefault[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}
