package analysis

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// speaker is the transcript label of a role; "" for roles left out.
func speaker(role string) string {
	switch role {
	case "user":
		return "User"
	case "assistant":
		return "Assistant"
	case "system":
		return "System"
	}
	return ""
}

// oneLine folds every run of white space (newlines included) into one
// space, so a message cannot start a line that looks like another speaker.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// transcript renders msgs as "User: …", "Assistant: …" and "System: …"
// lines, one per message, in order. Messages with other roles or without
// text are left out; white space inside a message is folded to single spaces.
func transcript(msgs []Message) string {
	var b strings.Builder
	for _, m := range msgs {
		who, text := speaker(m.Role), oneLine(m.Content)
		if who == "" || text == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(who)
		b.WriteString(": ")
		b.WriteString(text)
	}
	return b.String()
}

// conversational counts the user and assistant messages that have text:
// the messages min_messages_threshold is compared with.
func conversational(msgs []Message) int {
	n := 0
	for _, m := range msgs {
		if (m.Role == "user" || m.Role == "assistant") && strings.TrimSpace(m.Content) != "" {
			n++
		}
	}
	return n
}

// Placeholder values.
const (
	phSchema       = "schema"
	phTranscript   = "transcript"
	phEndedReason  = "ended_reason"
	phSummary      = "summary"
	phDuration     = "duration"
	phCallerNumber = "caller_number"
)

// placeholders maps each accepted spelling to the value it stands for.
var placeholders = [...]struct{ token, name string }{
	{"{{ended_reason}}", phEndedReason},
	{"{{endedReason}}", phEndedReason}, // REF-FLIREO
	{"{{caller_number}}", phCallerNumber},
	{"{{transcript}}", phTranscript},
	{"{{duration}}", phDuration},
	{"{{summary}}", phSummary},
	{"{{schema}}", phSchema},
	{"{caller_number}", phCallerNumber}, // SDK-NEW analysis templates
	{"{transcript}", phTranscript},
	{"{duration}", phDuration},
	{"{summary}", phSummary},
}

// expand replaces the placeholders of s with their values in one pass over
// s: text that came from a value is never scanned again, so a transcript
// that contains "{{schema}}" stays as it is. Placeholders without a value
// in values, and unknown ones, are left as written. used reports the names
// of the values that were put in.
func expand(s string, values map[string]string) (out string, used map[string]bool) {
	var b strings.Builder
	used = map[string]bool{}
	for {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			b.WriteString(s)
			return b.String(), used
		}
		b.WriteString(s[:i])
		s = s[i:]
		matched := false
		for _, p := range placeholders {
			v, ok := values[p.name]
			if ok && strings.HasPrefix(s, p.token) {
				b.WriteString(v)
				s = s[len(p.token):]
				used[p.name] = true
				matched = true
				break
			}
		}
		if !matched {
			b.WriteByte('{')
			s = s[1:]
		}
	}
}

// seconds is d in whole seconds, rounded, as the end-of-call report's
// duration_seconds.
func seconds(d time.Duration) string {
	return strconv.FormatInt(int64(math.Round(d.Seconds())), 10)
}

// orUnknown is s, or "unknown" when s is blank.
func orUnknown(s string) string {
	if strings.TrimSpace(s) == "" {
		return "unknown"
	}
	return s
}
