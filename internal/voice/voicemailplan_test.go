package voice

import "testing"

func TestPlanVoicemail(t *testing.T) {
	tests := []struct {
		doc     string
		on      bool
		message string
	}{
		{`{}`, false, ""},
		{`{"voicemail_detection": false, "voicemail_message": "Hi"}`, false, ""},
		{`{"voicemail_detection": null}`, false, ""},
		{`{"voicemail_detection": true}`, true, ""},
		{`{"voicemail_detection": true, "voicemail_message": null}`, true, ""},
		{`{"voicemail_detection": true, "voicemail_message": "  "}`, true, ""},
		{`{"voicemail_detection": true, "voicemail_message": " Please call back. "}`, true, "Please call back."},
		{`not json`, false, ""},
	}
	for _, tt := range tests {
		v := planVoicemail([]byte(tt.doc))
		if (v != nil) != tt.on || (v != nil && v.Message != tt.message) {
			t.Errorf("planVoicemail(%s) = %+v, want on %v message %q", tt.doc, v, tt.on, tt.message)
		}
	}
}
