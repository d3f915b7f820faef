package analysis

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/llm"
	"github.com/parley-voice/parley/internal/provider/openai"
	"github.com/parley-voice/parley/internal/provider/openai/openaifake"
)

// dentalCall is a short finished call.
func dentalCall(lang string) Call {
	return Call{
		Messages: []Message{
			{Role: "assistant", Content: "Goedemiddag, Tandartspraktijk Zuid."},
			{Role: "system", Content: "Caller is an existing patient."},
			{Role: "user", Content: "Ik wil graag een afspraak\nvoor dinsdag."},
			{Role: "assistant", Content: "Dinsdag om tien uur staat genoteerd."},
		},
		EndedReason:  "user_hangup",
		Duration:     2*time.Minute + 5*time.Second,
		CallerNumber: "+31612345678",
		Language:     lang,
	}
}

func TestSummarizeRequest(t *testing.T) {
	tests := []struct {
		lang     string
		wantLang string
	}{
		{lang: "nl", wantLang: "Write the summary in Dutch, the language of the call."},
		{lang: "en-US", wantLang: "Write the summary in English, the language of the call."},
		{lang: "", wantLang: "Write the summary in the language the conversation was held in."},
		{lang: "multi", wantLang: "Write the summary in the language the conversation was held in."},
	}
	for _, tc := range tests {
		t.Run(tc.lang, func(t *testing.T) {
			fake, m := fakeModel(t, texts("  De patiënt belde voor een afspraak. Die staat op dinsdag om tien uur.\n "))
			got, err := Summarize(context.Background(), m, dentalCall(tc.lang))
			if err != nil {
				t.Fatalf("Summarize: %v", err)
			}
			if want := "De patiënt belde voor een afspraak. Die staat op dinsdag om tien uur."; got != want {
				t.Errorf("summary = %q, want %q", got, want)
			}
			reqs := fake.Requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Model != "gpt-5.4-mini" || r.Temperature == nil || *r.Temperature != SummaryTemperature || r.ResponseFormat != nil {
				t.Errorf("request model %q, temperature %v, response_format %s", r.Model, r.Temperature, r.ResponseFormat)
			}
			if len(r.Messages) != 2 || r.Messages[0].Role != llm.System || r.Messages[1].Role != llm.User {
				t.Fatalf("messages = %+v, want system + user", r.Messages)
			}
			sys := r.Messages[0].Content
			for _, want := range []string{"2 to 4 sentences", "never invent", tc.wantLang} {
				if !strings.Contains(sys, want) {
					t.Errorf("system prompt lacks %q:\n%s", want, sys)
				}
			}
			wantUser := "Call ended: user_hangup\nDuration: 125 seconds\n\nTranscript:\n" +
				"Assistant: Goedemiddag, Tandartspraktijk Zuid.\n" +
				"System: Caller is an existing patient.\n" +
				"User: Ik wil graag een afspraak voor dinsdag.\n" +
				"Assistant: Dinsdag om tien uur staat genoteerd."
			if r.Messages[1].Content != wantUser {
				t.Errorf("user message =\n%s\nwant\n%s", r.Messages[1].Content, wantUser)
			}
		})
	}
}

func TestSummarizeTemperatureOverride(t *testing.T) {
	fake, m := fakeModel(t, texts("Short call."))
	m.Temperature = ptr(0.9)
	c := dentalCall("en")
	c.EndedReason, c.Duration = "", 0
	if _, err := Summarize(context.Background(), m, c); err != nil {
		t.Fatal(err)
	}
	r := fake.Requests()[0]
	if r.Temperature == nil || *r.Temperature != 0.9 {
		t.Errorf("temperature = %v, want 0.9", r.Temperature)
	}
	if !strings.HasPrefix(r.Messages[1].Content, "Transcript:\nAssistant: ") {
		t.Errorf("user message without ended reason and duration = %q", r.Messages[1].Content)
	}
}

func TestFixedSummaries(t *testing.T) {
	tests := []struct {
		name string
		call Call
		want string
	}{
		{name: "voicemail with message",
			call: Call{Voicemail: ptr("  Hi, this is Anna from Dental Care, please call us back.  "),
				Messages: []Message{{Role: "user", Content: "Leave a message after the beep."}, {Role: "assistant", Content: "Hi, this is Anna"}}},
			want: "Voicemail detected. Left message: Hi, this is Anna from Dental Care, please call us back."},
		{name: "voicemail without message", call: Call{Voicemail: ptr(""), Messages: []Message{{Role: "user", Content: "Not available."}}},
			want: "Voicemail detected. No message left."},
		{name: "no messages with reason", call: Call{EndedReason: "consent_declined"},
			want: "No conversation took place (ended: consent_declined)."},
		{name: "no messages without reason", call: Call{}, want: "No conversation took place."},
		{name: "only context and blank turns", call: Call{EndedReason: "silence_timeout",
			Messages: []Message{{Role: "system", Content: "VIP"}, {Role: "user", Content: " "}, {Role: "assistant", Content: ""}}},
			want: "No conversation took place (ended: silence_timeout)."},
		{name: "only the assistant spoke", call: Call{EndedReason: "user_hangup",
			Messages: []Message{{Role: "assistant", Content: "Hello, this is the dental office."}, {Role: "user", Content: "  "}}},
			want: "The caller did not speak; only the assistant did."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake, m := fakeModel(t, never(t))
			got, err := Summarize(context.Background(), m, tc.call)
			if err != nil || got != tc.want {
				t.Errorf("Summarize = %q, %v; want %q", got, err, tc.want)
			}
			if n := len(fake.Requests()); n != 0 {
				t.Errorf("%d requests, want none", n)
			}
		})
	}
	t.Run("no model needed", func(t *testing.T) {
		if got, err := Summarize(context.Background(), Model{}, Call{}); err != nil || got != "No conversation took place." {
			t.Errorf("Summarize without a model = %q, %v", got, err)
		}
	})
}

func TestSummarizeErrors(t *testing.T) {
	t.Run("empty answer", func(t *testing.T) {
		fake, m := fakeModel(t, texts(" \n\t"))
		_, err := Summarize(context.Background(), m, dentalCall("en"))
		if err == nil || !strings.Contains(err.Error(), "empty summary") {
			t.Errorf("err = %v, want an empty-summary error", err)
		}
		if len(fake.Requests()) != 1 {
			t.Errorf("%d requests, want 1", len(fake.Requests()))
		}
	})
	t.Run("model error", func(t *testing.T) {
		_, m := fakeModel(t, script(openaifake.Reply{Status: 500}))
		_, err := Summarize(context.Background(), m, dentalCall("en"))
		var apiErr *openai.APIError
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 500 {
			t.Fatalf("err = %v, want the API error with status 500", err)
		}
		if !strings.Contains(err.Error(), "summarize with gpt-5.4-mini") {
			t.Errorf("err = %q does not say what was being done", err)
		}
		if strings.Contains(err.Error(), testKey) {
			t.Errorf("err %q contains the key", err)
		}
	})
	t.Run("no provider or model name", func(t *testing.T) {
		if _, err := Summarize(context.Background(), Model{Name: "x"}, dentalCall("en")); err == nil {
			t.Error("Summarize without a provider succeeded")
		}
		_, m := fakeModel(t, never(t))
		m.Name = ""
		if _, err := Summarize(context.Background(), m, dentalCall("en")); err == nil {
			t.Error("Summarize without a model name succeeded")
		}
	})
}
