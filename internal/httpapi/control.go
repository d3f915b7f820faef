package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/fault"
)

// Live call control (spec §7.6, §8.12).

// maxCommandText caps the text of a command (content, message) in characters.
const maxCommandText = 4000

var commandTypes = []call.CommandType{call.CmdInjectContext, call.CmdSay, call.CmdEndCall, call.CmdTransfer}

// controlCall sends a command to a call in progress. The order of the checks:
// the call must exist in the organization (404), the engine must be on
// (503), each call takes 10 commands a minute (429, every command counted),
// the call must be in progress (400), the command must be valid (400).
func (s *Server) controlCall(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	ctx, org := r.Context(), orgID(r)
	c, err := s.db.GetCall(ctx, org, id)
	if err != nil {
		return err
	}
	if s.calls == nil {
		return errVoiceOff
	}
	if err := s.controlRate(w, org, id); err != nil {
		return err
	}
	if c.Status != call.StatusInProgress {
		return &fault.Error{Kind: fault.Invalid, Code: "call_not_in_progress",
			Message: "call " + id + " is " + c.Status.String() + "; commands need a call in progress"}
	}
	obj, err := s.readObject(w, r, false)
	if err != nil {
		return err
	}
	cmd, err := decodeCommand(obj)
	if err != nil {
		return err
	}
	if err := s.calls.Control(ctx, org, id, cmd); err != nil {
		return err
	}
	return reply(w, http.StatusOK, map[string]any{"success": true, "message": "Command sent successfully"})
}

// controlRate counts one command against the call's budget. The response
// headers describe whichever limit is closer, the call's or the API key's.
func (s *Server) controlRate(w http.ResponseWriter, org, callID string) error {
	d := s.control.Allow(org + "\x00" + callID)
	keyLeft, err := strconv.Atoi(w.Header().Get("X-RateLimit-Remaining"))
	if !d.Allowed || err != nil || d.Remaining < keyLeft {
		return rateHeaders(w, d, "Too many commands for this call (at most "+strconv.Itoa(d.Limit)+" a minute)")
	}
	return nil
}

// decodeCommand reads one CallControlCommand, discriminated by type.
func decodeCommand(obj object) (call.Command, error) {
	fs := newFields(obj)
	allowed := make([]string, len(commandTypes))
	for i, t := range commandTypes {
		allowed[i] = string(t)
	}
	var cmd call.Command
	typ, ok := fs.raw("type")
	var name string
	switch {
	case !ok || isNull(typ):
		fs.f.Add("type", "missing_field", "is required: one of "+strings.Join(allowed, ", "))
		return cmd, fs.err()
	case json.Unmarshal(typ, &name) != nil:
		fs.f.Invalidf("type", "must be a string: one of %s", strings.Join(allowed, ", "))
		return cmd, fs.err()
	}
	cmd.Type = call.CommandType(name)
	text := func(key string, required bool) string {
		var v string
		if required {
			v, _ = fs.str(key, true)
		} else if p, _ := fs.nullableStr(key); p != nil {
			v = *p
		}
		if n := utf8.RuneCountInString(v); n > maxCommandText {
			fs.f.Invalidf(key, "must be at most %d characters (got %d)", maxCommandText, n)
		}
		return v
	}
	switch cmd.Type {
	case call.CmdInjectContext:
		cmd.Content = text("content", true)
		cmd.TriggerResponse, _ = fs.boolean("trigger_response")
	case call.CmdSay:
		cmd.Content = text("content", true)
		cmd.EndAfter, _ = fs.boolean("end_after")
	case call.CmdEndCall:
		cmd.Message = text("message", false)
	case call.CmdTransfer:
		if v, ok := fs.str("destination", true); ok {
			dest, err := transferDestination(v)
			if err != nil {
				fs.f.Invalidf("destination", "%v", err)
			}
			cmd.Destination = dest
		}
		cmd.Message = text("message", false)
	default:
		fs.f.Invalidf("type", "must be one of %s (got %q)", strings.Join(allowed, ", "), name)
		return cmd, fs.err()
	}
	fs.unknown()
	return cmd, fs.err()
}

// transferDestination accepts an E.164 number (spaces and dashes removed) or
// a SIP URI (sip: or sips:) with a host, optionally a user part, port, URI
// parameters and headers.
func transferDestination(v string) (string, error) {
	v = strings.TrimSpace(v)
	bad := fmt.Errorf("must be an E.164 number such as +31201234567 or a SIP URI such as sip:desk@pbx.example.com (got %q)", v)
	scheme, rest, isURI := strings.Cut(v, ":")
	if s := strings.ToLower(scheme); !isURI || s != "sip" && s != "sips" {
		num := strings.ReplaceAll(strings.ReplaceAll(v, " ", ""), "-", "")
		if !validE164(num) {
			return "", bad
		}
		return num, nil
	}
	if i := strings.IndexAny(rest, ";?"); i >= 0 {
		rest = rest[:i] // URI parameters and headers
	}
	hostport := rest
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		if at == 0 {
			return "", bad
		}
		hostport = rest[at+1:]
	}
	if l := strings.ToLower(hostport); strings.HasPrefix(l, "sip:") || strings.HasPrefix(l, "sips:") || strings.ContainsAny(v, " \t\r\n<>\"") {
		return "", bad
	}
	if _, ok := normalizeSIPAddress(hostport); !ok {
		return "", bad
	}
	return v, nil
}
