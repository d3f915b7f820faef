package call

import (
	"crypto/rand"
	"encoding/json"
)

// CommandType is a live call-control command (spec §7.6, §8.12).
type CommandType string

// Command types, as spelled on the wire.
const (
	CmdInjectContext CommandType = "inject-context"
	CmdSay           CommandType = "say"
	CmdEndCall       CommandType = "end-call"
	CmdTransfer      CommandType = "transfer"
)

// Command is one validated control command for a call in progress.
type Command struct {
	Type CommandType
	// Content: inject-context and say.
	Content string
	// TriggerResponse: inject-context makes the assistant answer at once.
	TriggerResponse bool
	// EndAfter: say ends the call once the text has been spoken.
	EndAfter bool
	// Message: end-call's final sentence, transfer's announcement.
	Message string
	// Destination: transfer, an E.164 number or a SIP URI.
	Destination string
}

// Dial is a validated outbound call request (spec §7.5), resolved to one
// number and one complete assistant document.
type Dial struct {
	// ID names the call; empty gets a new OutboundID. The campaign dialer
	// names the call in the transaction that claims its lead.
	ID          string
	OrgID       string
	Destination string // E.164
	NumberID    string
	// AssistantID is the saved assistant used (reference and hybrid
	// modes); empty for a transient assistant.
	AssistantID string
	// Assistant is the canonical assistant document the call runs with,
	// after overrides and the first_message override.
	Assistant json.RawMessage
}

// OutboundID makes an outbound call id in the documented shape:
// call-outbound-<12 letters and digits>.
func OutboundID() string {
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 12)
	rand.Read(b)
	for i := range b {
		b[i] = alnum[int(b[i])%len(alnum)]
	}
	return "call-outbound-" + string(b)
}
