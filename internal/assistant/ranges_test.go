package assistant

import (
	"fmt"
	"strings"
	"testing"
)

// rangeCase puts value at one spot of an otherwise valid assistant and says
// whether it must be accepted, and if so what the canonical value is.
type rangeCase struct {
	spot  string // a document template with %s where the value goes
	path  string // dotted path of the value
	value string
	ok    bool
	want  string // canonical value when ok ("" = same as value)
}

var (
	llmSpot      = `{"name":"x","llm_config":{"provider":"openai","temperature":%s}}`
	tokensSpot   = `{"name":"x","llm_config":{"provider":"google","max_completion_tokens":%s}}`
	xaiSpot      = `{"name":"x","llm_config":{"provider":"xai_realtime","speed":%s}}`
	tdSpot       = `{"name":"x","llm_config":{"provider":"xai_realtime","turn_detection":{"%s}}}`
	keytermsSpot = `{"name":"x","llm_config":{"provider":"xai_realtime","transcription":{"keyterms":%s}}}`
	ttSpot       = `{"name":"x","speech_config":{"turn_taking":{%s}}}`
	pronSpot     = `{"name":"x","speech_config":{"pronunciation":%s}}`
	silenceSpot  = `{"name":"x","speech_config":{"silence":{%s}}}`
	bgSpot       = `{"name":"x","speech_config":{"background_audio":{"volume":%s}}}`
	dgSpot       = `{"name":"x","stt_config":{"provider":"deepgram",%s}}`
	gladiaSpot   = `{"name":"x","stt_config":{"provider":"gladia","endpointing":%s}}`
	elSpot       = `{"name":"x","tts_config":{"provider":"elevenlabs","voice_id":"v",%s}}`
	googleSpot   = `{"name":"x","tts_config":{"provider":"google","speaking_rate":%s}}`
	topSpot      = `{"name":"x",%s}`
)

func kv(key, val string) string { return fmt.Sprintf(`"%s":%s`, key, val) }

func quoted(n int) string { return `"` + strings.Repeat("a", n) + `"` }

func list(n int, item string) string {
	items := make([]string, n)
	for i := range items {
		items[i] = item
	}
	return "[" + strings.Join(items, ",") + "]"
}

func TestRanges(t *testing.T) {
	var cases []rangeCase
	add := func(spot, path string, okVals, badVals []string) {
		for _, v := range okVals {
			cases = append(cases, rangeCase{spot: spot, path: path, value: v, ok: true})
		}
		for _, v := range badVals {
			cases = append(cases, rangeCase{spot: spot, path: path, value: v})
		}
	}
	keyed := func(spot, key, path string, okVals, badVals []string) {
		for _, v := range okVals {
			cases = append(cases, rangeCase{spot: spot, path: path, value: kv(key, v), ok: true})
		}
		for _, v := range badVals {
			cases = append(cases, rangeCase{spot: spot, path: path, value: kv(key, v)})
		}
	}

	add(llmSpot, "llm_config.temperature", []string{"0", "0.7", "2"}, []string{"-0.01", "2.01", `"1"`})
	add(tokensSpot, "llm_config.max_completion_tokens", []string{"1", "32768"}, []string{"0", "32769", "1.5"})
	add(xaiSpot, "llm_config.speed", []string{"0.7", "1.5"}, []string{"0.69", "1.51"})
	add(keytermsSpot, "llm_config.transcription.keyterms", []string{list(100, quoted(50))}, []string{list(101, `"k"`)})
	add(keytermsSpot, "llm_config.transcription.keyterms[0]", nil, []string{list(1, quoted(51))})

	keyed(ttSpot, "endpointing_min_delay", "speech_config.turn_taking.endpointing_min_delay", []string{"0.1", "2"}, []string{"0.09", "5.01"})
	keyed(ttSpot, "endpointing_max_delay", "speech_config.turn_taking.endpointing_max_delay", []string{"0.4", "5"}, []string{"0.09", "5.01", "0.39"})
	keyed(ttSpot, "interruption_min_duration", "speech_config.turn_taking.interruption_min_duration", []string{"0.05", "2"}, []string{"0.04", "2.01"})
	keyed(ttSpot, "interruption_min_words", "speech_config.turn_taking.interruption_min_words", []string{"0", "10"}, []string{"-1", "11", "2.5"})
	keyed(ttSpot, "false_interruption_timeout", "speech_config.turn_taking.false_interruption_timeout", []string{"0.2", "5", "null"}, []string{"0.19", "5.01"})
	cases = append(cases,
		rangeCase{spot: ttSpot, path: "", value: `"endpointing_min_delay":5,"endpointing_max_delay":5`, ok: true},
		rangeCase{spot: ttSpot, path: "speech_config.turn_taking.endpointing_max_delay", value: `"endpointing_min_delay":1.5,"endpointing_max_delay":1`},
	)

	add(pronSpot, "speech_config.pronunciation", []string{list(50, `{"from":"a","to":"b"}`)}, []string{list(51, `{"from":"a","to":"b"}`)})
	add(pronSpot, "speech_config.pronunciation[0].from", []string{`[{"from":` + quoted(64) + `,"to":""}]`}, []string{`[{"from":"","to":"b"}]`, `[{"from":` + quoted(65) + `,"to":"b"}]`, `[{"to":"b"}]`})
	add(pronSpot, "speech_config.pronunciation[0].to", []string{`[{"from":"a","to":` + quoted(128) + `}]`}, []string{`[{"from":"a","to":` + quoted(129) + `}]`, `[{"from":"a"}]`})

	keyed(silenceSpot, "messages", "speech_config.silence.messages", []string{list(5, quoted(300))}, []string{list(6, `"m"`)})
	keyed(silenceSpot, "messages", "speech_config.silence.messages[0]", nil, []string{list(1, `""`), list(1, quoted(301))})
	keyed(silenceSpot, "final_message", "speech_config.silence.final_message", []string{quoted(300), "null", `""`}, []string{quoted(301)})
	keyed(silenceSpot, "first_check_seconds", "speech_config.silence.first_check_seconds", []string{"1", "60"}, []string{"0.99", "61"})
	keyed(silenceSpot, "interval_seconds", "speech_config.silence.interval_seconds", []string{"3", "120"}, []string{"2.9", "121"})
	keyed(silenceSpot, "max_attempts", "speech_config.silence.max_attempts", []string{"1", "10"}, []string{"0", "11"})
	add(bgSpot, "speech_config.background_audio.volume", []string{"0.05", "1"}, []string{"0.04", "1.01"})
	keyed(topSpot, "speech_config", "speech_config.end_call_message", nil, []string{`{"end_call_message":` + quoted(301) + `}`})
	keyed(topSpot, "speech_config", "speech_config.first_message_outbound", []string{`{"first_message_outbound":` + quoted(300) + `}`}, []string{`{"first_message_outbound":` + quoted(301) + `}`})

	keyed(dgSpot, "endpointing", "stt_config.endpointing", []string{"0", "5000"}, []string{"-1", "5001", "10.5"})
	keyed(dgSpot, "utterance_end_ms", "stt_config.utterance_end_ms", []string{"1000", "5000"}, []string{"999", "5001"})
	add(gladiaSpot, "stt_config.endpointing", []string{"0.01", "1"}, []string{"0.009", "1.01"})
	keyed(elSpot, "stability", "tts_config.stability", []string{"0", "1"}, []string{"-0.01", "1.01"})
	keyed(elSpot, "similarity_boost", "tts_config.similarity_boost", []string{"0", "1"}, []string{"1.5"})
	keyed(elSpot, "speed", "tts_config.speed", []string{"0.5", "2"}, []string{"0.49", "2.01"})
	add(googleSpot, "tts_config.speaking_rate", []string{"0.25", "2"}, []string{"0.24", "2.01"})

	keyed(topSpot, "max_duration_seconds", "max_duration_seconds", []string{"10", "43200", "null"}, []string{"9", "43201"})
	keyed(topSpot, "silence_timeout_seconds", "silence_timeout_seconds", []string{"1", "600"}, []string{"0", "601"})
	keyed(topSpot, "notification_emails", "notification_emails", []string{list(5, `"a@example.com"`)}, []string{list(6, `"a@example.com"`)})

	// Clamped, not rejected (spec §8.4).
	cases = append(cases,
		rangeCase{spot: tdSpot, path: "llm_config.turn_detection", value: `threshold":1.01`, ok: true, want: `{"threshold":1}`},
		rangeCase{spot: tdSpot, path: "llm_config.turn_detection", value: `threshold":-3`, ok: true, want: `{"threshold":0}`},
		rangeCase{spot: tdSpot, path: "llm_config.turn_detection", value: `silence_duration_ms":99`, ok: true, want: `{"silence_duration_ms":100}`},
		rangeCase{spot: tdSpot, path: "llm_config.turn_detection", value: `prefix_padding_ms":2001`, ok: true, want: `{"prefix_padding_ms":2000}`},
		rangeCase{spot: tdSpot, path: "llm_config.turn_detection", value: `idle_timeout_ms":30000`, ok: true, want: `{"idle_timeout_ms":30000}`},
		rangeCase{spot: tdSpot, path: "llm_config.turn_detection.threshold", value: `threshold":"high"`},
	)

	v := newValidator(t)
	for _, c := range cases {
		in := fmt.Sprintf(c.spot, c.value)
		name := c.path + "=" + c.value
		if len(name) > 80 {
			name = name[:80]
		}
		t.Run(name, func(t *testing.T) {
			got, err := v.Normalize(parseDoc(t, in), Options{})
			if !c.ok {
				e := invalid(t, err)
				if e.Field != c.path || len(e.Details) != 1 {
					t.Errorf("%s: error on %q (%q), want one error on %q", in, e.Field, e.Details, c.path)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s: %v", in, err)
			}
			if c.want != "" {
				top := strings.SplitN(c.path, ".", 2)[0]
				if !strings.Contains(string(got[top]), c.want) {
					t.Errorf("%s = %s, want it to contain %s", top, got[top], c.want)
				}
			}
		})
	}
}
