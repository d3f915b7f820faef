package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// streamable is the Streamable HTTP transport: every message is a POST to
// one endpoint, and a request is answered in the POST's response, as JSON
// or as an event stream. It starts no goroutines.
type streamable struct {
	httpConn
	url     string
	timeout time.Duration // bounds the DELETE sent by close

	mu        sync.Mutex
	sessionID string // Mcp-Session-Id given with the initialize response
	version   string // protocol version negotiated by initialize
}

func (t *streamable) roundTrip(ctx context.Context, msg *message) (*message, error) {
	body, err := json.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("encode message: %w", err)
	}
	req, err := t.newRequest(ctx, http.MethodPost, t.url, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json, text/event-stream")
	sessionID := t.setSession(req)
	resp, err := t.do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound && sessionID != "":
		return nil, fmt.Errorf("session expired: %w", newHTTPError(resp))
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return nil, newHTTPError(resp)
	case msg.ID == nil:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, nil
	case resp.StatusCode == http.StatusAccepted:
		return nil, errors.New("server accepted the request without answering it")
	}
	var reply *message
	switch mt := mediaType(resp); mt {
	case "application/json":
		reply, err = readJSONReply(resp.Body, msg.ID)
	case "text/event-stream":
		reply, err = readStreamReply(resp.Body, msg.ID)
	default:
		err = fmt.Errorf("unexpected response content type %q", mt)
	}
	if err != nil {
		return nil, err
	}
	if msg.Method == "initialize" {
		t.initialized(resp.Header.Get("Mcp-Session-Id"), reply)
	}
	return reply, nil
}

// setSession adds the session headers to req and returns the session id
// it sent ("" for none).
func (t *streamable) setSession(req *http.Request) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sessionID != "" {
		req.Header.Set("Mcp-Session-Id", t.sessionID)
	}
	if t.version != "" {
		req.Header.Set("MCP-Protocol-Version", t.version)
	}
	return t.sessionID
}

// initialized remembers the session id and the protocol version from the
// initialize response, to send them with every later request. Connect
// checks the version.
func (t *streamable) initialized(sessionID string, reply *message) {
	var res struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	_ = json.Unmarshal(reply.Result, &res)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sessionID = sessionID
	t.version = res.ProtocolVersion
}

// close asks the server to end the session, if it gave one. A server
// that does not allow that (405) or has already forgotten it (404) is not
// an error.
func (t *streamable) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), t.timeout)
	defer cancel()
	req, err := t.newRequest(ctx, http.MethodDelete, t.url, nil)
	if err != nil {
		return err
	}
	if t.setSession(req) == "" {
		return nil
	}
	resp, err := t.do(req)
	if err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode <= 299,
		resp.StatusCode == http.StatusNotFound,
		resp.StatusCode == http.StatusMethodNotAllowed:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil
	}
	return fmt.Errorf("end session: %w", newHTTPError(resp))
}
