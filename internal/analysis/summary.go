package analysis

import (
	"context"
	"fmt"
	"strings"

	"github.com/parley-voice/parley/internal/llm"
)

// Fixed summaries, written without a model request.
const (
	voicemailPrefix    = "Voicemail detected. Left message: "
	voicemailNoMessage = "Voicemail detected. No message left."
	noConversation     = "No conversation took place."
	callerSilent       = "The caller did not speak; only the assistant did."
)

// summaryPrompt is the system prompt of a summary request; %s is the
// language instruction.
const summaryPrompt = "You summarize phone calls between a person (User) and an AI voice assistant (Assistant); " +
	"System lines are context given to the assistant during the call. " +
	"Write a concise summary of 2 to 4 sentences: why the call took place, what was discussed or agreed, and how it ended. " +
	"Use only facts stated in the transcript; never invent names, numbers, dates or outcomes. " +
	"%s Reply with the summary text only, without a heading, list or quotes."

// Summarize returns the AI summary of c (spec §9.7 summary). A voicemail
// call gets "Voicemail detected. Left message: <msg>" (or "Voicemail
// detected. No message left.") and a call without user or assistant text
// "No conversation took place." (with " (ended: <reason>)" when known),
// both without a model request. Otherwise the model is asked once, at
// m.Temperature or SummaryTemperature, with a system prompt asking for 2–4
// sentences in the call's language and the transcript; its trimmed answer
// is returned, and an empty answer is an error.
func Summarize(ctx context.Context, m Model, c Call) (string, error) {
	if s, ok := FixedSummary(c); ok {
		return s, nil
	}
	if err := m.check(); err != nil {
		return "", fmt.Errorf("analysis: summarize: %w", err)
	}
	req := llm.Request{
		Model:       m.Name,
		APIKey:      m.APIKey,
		Messages:    summaryMessages(c),
		Temperature: m.temperature(SummaryTemperature),
	}
	text, err := complete(ctx, m.Provider, req)
	if err != nil {
		return "", fmt.Errorf("analysis: summarize with %s: %w", m.Name, err)
	}
	text = strings.TrimSpace(text)
	if text == "" {
		return "", fmt.Errorf("analysis: summarize with %s: the model returned an empty summary", m.Name)
	}
	return text, nil
}

// FixedSummary is the summary of a voicemail call, of a call without
// conversation, or of one where only the assistant spoke, which needs no
// model; false for every other call.
func FixedSummary(c Call) (string, bool) {
	if c.Voicemail != nil {
		if msg := strings.TrimSpace(*c.Voicemail); msg != "" {
			return voicemailPrefix + msg, true
		}
		return voicemailNoMessage, true
	}
	if conversational(c.Messages) > 0 {
		if !callerSpoke(c.Messages) {
			return callerSilent, true
		}
		return "", false
	}
	if r := strings.TrimSpace(c.EndedReason); r != "" {
		return strings.TrimSuffix(noConversation, ".") + " (ended: " + r + ").", true
	}
	return noConversation, true
}

// callerSpoke reports whether the other party said anything: without it a
// summary has nothing to tell but that.
func callerSpoke(msgs []Message) bool {
	for _, m := range msgs {
		if m.Role == "user" && strings.TrimSpace(m.Content) != "" {
			return true
		}
	}
	return false
}

// summaryMessages is the conversation of a summary request.
func summaryMessages(c Call) []llm.Message {
	var user strings.Builder
	if r := strings.TrimSpace(c.EndedReason); r != "" {
		user.WriteString("Call ended: " + r + "\n")
	}
	if c.Duration > 0 {
		user.WriteString("Duration: " + seconds(c.Duration) + " seconds\n")
	}
	if user.Len() > 0 {
		user.WriteByte('\n')
	}
	user.WriteString("Transcript:\n")
	user.WriteString(transcript(c.Messages))
	return []llm.Message{
		{Role: llm.System, Content: fmt.Sprintf(summaryPrompt, languageInstruction(c.Language))},
		{Role: llm.User, Content: user.String()},
	}
}

// languageNames are the English names of the STT languages (spec §10.4)
// and of the other codes their BCP-47 forms use.
var languageNames = map[string]string{
	"nl": "Dutch", "en": "English", "de": "German", "fr": "French", "es": "Spanish", "it": "Italian",
	"pt": "Portuguese", "pl": "Polish", "ru": "Russian", "ja": "Japanese", "ko": "Korean", "zh": "Chinese",
	"cmn": "Chinese", "ar": "Arabic", "hi": "Hindi", "da": "Danish", "sv": "Swedish", "no": "Norwegian",
	"nb": "Norwegian", "nn": "Norwegian", "fi": "Finnish", "cs": "Czech", "hu": "Hungarian", "ro": "Romanian",
	"bg": "Bulgarian", "hr": "Croatian", "sk": "Slovak", "tr": "Turkish", "id": "Indonesian", "vi": "Vietnamese",
	"uk": "Ukrainian", "el": "Greek", "he": "Hebrew", "th": "Thai",
}

// languageInstruction tells the model which language to write in: the
// named language for a known hint, the conversation's own language for
// "", "multi" or a malformed hint.
func languageInstruction(hint string) string {
	const fallback = "Write the summary in the language the conversation was held in."
	code, _, _ := strings.Cut(strings.ReplaceAll(strings.TrimSpace(hint), "_", "-"), "-")
	code = strings.ToLower(code)
	if code == "" || code == "multi" || len(code) > 8 || strings.Trim(code, "abcdefghijklmnopqrstuvwxyz") != "" {
		return fallback
	}
	if name, ok := languageNames[code]; ok {
		return "Write the summary in " + name + ", the language of the call."
	}
	return fmt.Sprintf("Write the summary in the language of the call (language code %q).", code)
}
