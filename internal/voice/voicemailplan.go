package voice

import (
	"encoding/json"
	"strings"

	"github.com/parley-voice/parley/internal/pipeline"
)

// Voicemail detection (spec §12.2): voicemail_detection turns it on for
// outbound calls only (an inbound caller is never a machine we called);
// voicemail_message is left after the beep, and null or blank hangs up
// silently. Either way the call ends with end_reason voicemail and the
// summary reads "Voicemail detected. Left message: …" (internal/analysis).

// voicemailDoc is the part of an assistant voicemail detection reads.
type voicemailDoc struct {
	Detection *bool   `json:"voicemail_detection"`
	Message   *string `json:"voicemail_message"`
}

// planVoicemail reads an assistant document's voicemail detection for an
// outbound call; nil: off.
func planVoicemail(doc []byte) *pipeline.Voicemail {
	var d voicemailDoc
	if json.Unmarshal(doc, &d) != nil || d.Detection == nil || !*d.Detection {
		return nil
	}
	v := &pipeline.Voicemail{}
	if d.Message != nil {
		v.Message = strings.TrimSpace(*d.Message)
	}
	return v
}
