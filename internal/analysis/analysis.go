// Package analysis does the post-call model work of a finished call (spec
// §12.6, §9.7): the AI summary every call gets, and the structured analysis
// of an assistant's analysis_plan (§8.6), optionally built from an analysis
// template (§7.13).
//
// Summarize writes a 2–4 sentence summary in the call's language; calls
// without conversation and voicemail calls get a fixed sentence without a
// model request. ParsePlan reads a canonical analysis_plan document (and
// the template it references) into a Plan whose JSON Schema is compiled
// once; Plan.Due says whether the call has enough messages; Analyze asks the
// model for a JSON object, validates it against the schema, asks once for a
// correction when it is not valid, and returns either a valid object or an
// *InvalidError.
//
// Every model request goes through llm.Provider.Stream and is bound to the
// caller's context. The package keeps no state between calls and logs
// nothing: transcripts and keys only travel to the model.
package analysis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/parley-voice/parley/internal/llm"
)

// Message is one transcript entry.
type Message struct {
	// Role is "user", "assistant" or "system" (context injected during the
	// call). Other roles are ignored.
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Call is what the analysis reads of a finished call.
type Call struct {
	Messages     []Message
	EndedReason  string // e.g. user_hangup, max_duration; "" = unknown
	Duration     time.Duration
	CallerNumber string
	// Language is the stt_config.language hint ("nl", "en-US", "multi";
	// "" = unknown). The summary is written in this language when known.
	Language string
	// Voicemail, when non-nil, says the call reached an answering machine;
	// *Voicemail is the message left ("" = none).
	Voicemail *string
}

// Model is the post-call model to use.
type Model struct {
	Provider llm.Provider
	Name     string
	APIKey   string // BYOK or the server's; may be empty for self-hosted servers
	// Temperature overrides the defaults: SummaryTemperature for
	// summaries, AnalysisTemperature for structured analysis.
	Temperature *float64
}

// Default temperatures, used when Model.Temperature is nil.
const (
	// SummaryTemperature is low so summaries stick to the transcript while
	// still reading naturally.
	SummaryTemperature = 0.3
	// AnalysisTemperature is 0: extraction should be as repeatable as the
	// model allows.
	AnalysisTemperature = 0.0
)

// maxReply bounds the text collected from one model reply.
const maxReply = 1 << 20

// temperature is m's temperature, or def.
func (m Model) temperature(def float64) *float64 {
	if m.Temperature != nil {
		t := *m.Temperature
		return &t
	}
	return &def
}

// check reports a Model that cannot be asked anything.
func (m Model) check() error {
	if m.Provider == nil {
		return errors.New("no model provider")
	}
	if m.Name == "" {
		return errors.New("no model name")
	}
	return nil
}

// complete sends req and collects the reply's text until io.EOF. The stream
// is always closed; a cancelled ctx ends the wait with ctx's error.
func complete(ctx context.Context, p llm.Provider, req llm.Request) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	st, err := p.Stream(ctx, req)
	if err != nil {
		return "", err
	}
	defer st.Close()
	var b strings.Builder
	for {
		d, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return b.String(), nil
		}
		if err != nil {
			if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
				return "", fmt.Errorf("%w (%w)", cerr, err)
			}
			return "", err
		}
		if b.Len()+len(d.Text) > maxReply {
			return "", fmt.Errorf("reply longer than %d bytes", maxReply)
		}
		b.WriteString(d.Text)
	}
}
