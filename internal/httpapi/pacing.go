package httpapi

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"time"

	"github.com/parley-voice/parley/internal/campaign"
	"github.com/parley-voice/parley/internal/store"
)

// A campaign's pacing (Parley extension): how many calls at once, how fast
// they start, how often a lead is tried and on which days. Unset (nil) means
// the default; the rules, limits and defaults are internal/campaign's, which
// the dialer uses too.

// readPacing applies the pacing members of a campaign create or PATCH body
// to c, recording a problem per member. A member sent as null returns to its
// default; the ranges are campaign.CheckPacing's, checked on the values sent
// (the others stand at their defaults, which are in range). days_of_week is
// read case-insensitively, short or full names, and stored as unique short
// names Monday first ([] or null: every day).
func readPacing(fs *fields, c *store.Campaign) {
	sent := campaign.Pacing{}.WithDefaults()
	ints := []struct {
		key string
		dst **int
		set func(int)
	}{
		{"max_concurrent_calls", &c.MaxConcurrentCalls, func(v int) { sent.MaxConcurrent = v }},
		{"max_attempts", &c.MaxAttempts, func(v int) { sent.MaxAttempts = v }},
		{"retry_delay_seconds", &c.RetryDelaySeconds, func(v int) {
			sent.RetryDelay = time.Duration(min(v, math.MaxInt32)) * time.Second // no overflow into the range
		}},
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
		v, err := strconv.Atoi(n.String())
		if !ok || err != nil {
			fs.f.Invalidf(t.key, "must be an integer, or null for the default")
			continue
		}
		*t.dst = &v
		t.set(v)
	}
	if raw, ok := fs.raw("calls_per_second"); ok {
		n, isNum := jsonNumber(raw)
		v, err := strconv.ParseFloat(n.String(), 64)
		switch {
		case isNull(raw):
			c.CallsPerSecond = nil
		case !isNum || err != nil:
			fs.f.Invalidf("calls_per_second", "must be a number, or null for the default")
		default:
			c.CallsPerSecond = &v
			sent.CallsPerSecond = v
		}
	}
	fs.f.Merge(campaign.CheckPacing(sent))
	if raw, ok := fs.raw("days_of_week"); ok {
		var names []string
		if isNull(raw) {
			c.DaysOfWeek = nil
		} else if err := json.Unmarshal(raw, &names); err != nil {
			fs.f.Invalidf("days_of_week", `must be an array of weekdays such as ["mon", "tue"], or null for every day`)
		} else if days, err := campaign.ParseDays(names); err != nil {
			fs.f.Merge(err)
		} else {
			c.DaysOfWeek = days.Names()
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

// pacingObject renders a campaign's effective pacing, defaults filled in.
func pacingObject(c *store.Campaign, out map[string]any) {
	p := c.Pacing()
	out["max_concurrent_calls"] = p.MaxConcurrent
	out["calls_per_second"] = p.CallsPerSecond
	out["max_attempts"] = p.MaxAttempts
	out["retry_delay_seconds"] = int(p.RetryDelay / time.Second)
	days := []string{}
	if len(c.DaysOfWeek) > 0 {
		days = c.DaysOfWeek
	}
	out["days_of_week"] = days
}
