package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/parley-voice/parley/internal/llm"
)

// The built-in tools, offered by both conversation engines.
const (
	ToolEndCall  = "end_call"      // hang up
	ToolTransfer = "transfer_call" // hand the caller to Config.Transfers
	ToolDTMF     = "send_dtmf"     // press keys (IVR navigation)
)

// ToolTimeout bounds a synchronous tool call (spec §9.5: 10 s).
const ToolTimeout = 10 * time.Second

// ToolSpecs returns the tools offered to the model: the assistant's own,
// then end_call (when endCall), transfer_call (when there are transfer
// destinations) and send_dtmf (when keys can be pressed on the call).
func ToolSpecs(tools []Tool, endCall bool, transfers []TransferDestination, keypad bool) []llm.ToolSpec {
	out := make([]llm.ToolSpec, 0, len(tools)+3)
	for _, t := range tools {
		out = append(out, t.Spec)
	}
	if endCall {
		out = append(out, llm.ToolSpec{
			Name:        ToolEndCall,
			Description: "End the phone call. Use it when the conversation is over or the caller asks to hang up; say goodbye first.",
			Parameters:  []byte(`{"type":"object","properties":{}}`),
		})
	}
	if len(transfers) > 0 {
		var desc strings.Builder
		desc.WriteString("Transfer the caller to a person or team. Destinations:")
		numbers := make([]string, len(transfers))
		for i, d := range transfers {
			numbers[i] = d.Number
			fmt.Fprintf(&desc, " %s: %s.", d.Number, d.Description)
		}
		params, _ := json.Marshal(map[string]any{
			"type":       "object",
			"properties": map[string]any{"destination": map[string]any{"type": "string", "enum": numbers}},
			"required":   []string{"destination"},
		})
		out = append(out, llm.ToolSpec{Name: ToolTransfer, Description: desc.String(), Parameters: params})
	}
	if keypad {
		out = append(out, llm.ToolSpec{
			Name:        ToolDTMF,
			Description: "Press keys on the phone keypad, e.g. to navigate an automated menu (IVR).",
			Parameters:  []byte(`{"type":"object","properties":{"digits":{"type":"string","description":"keys to press: 0-9, * and #"}},"required":["digits"]}`),
		})
	}
	return out
}

// FindTool returns the assistant's tool called name, or nil.
func FindTool(tools []Tool, name string) *Tool {
	for i := range tools {
		if tools[i].Spec.Name == name {
			return &tools[i]
		}
	}
	return nil
}

// FindTransfer reads transfer_call's {"destination": …} argument and
// returns that destination when it is one of transfers.
func FindTransfer(transfers []TransferDestination, args string) (TransferDestination, bool) {
	var a struct {
		Destination string `json:"destination"`
	}
	if json.Unmarshal([]byte(args), &a) != nil {
		return TransferDestination{}, false
	}
	for _, d := range transfers {
		if d.Number == a.Destination {
			return d, true
		}
	}
	return TransferDestination{}, false
}

// ToolError is a tool result reporting a failure to the model.
func ToolError(msg string) string {
	b, _ := json.Marshal(map[string]string{"error": msg})
	return string(b)
}

// PressKeys runs send_dtmf with its JSON arguments on keypad.
func PressKeys(ctx context.Context, keypad Keypad, args string) string {
	var a struct {
		Digits string `json:"digits"`
	}
	if json.Unmarshal([]byte(args), &a) != nil || a.Digits == "" {
		return `{"error":"send_dtmf needs {\"digits\": \"123#\"}"}`
	}
	kctx, cancel := context.WithTimeout(ctx, ToolTimeout)
	defer cancel()
	if err := keypad.SendDTMF(kctx, a.Digits); err != nil {
		return ToolError(err.Error())
	}
	b, _ := json.Marshal(map[string]string{"sent": a.Digits})
	return string(b)
}
