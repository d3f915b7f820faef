package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
)

// message is any JSON-RPC 2.0 message: a request (method and id), a
// notification (method, no id) or a response (id with result or error).
type message struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method,omitempty"`
	Params  json.RawMessage `json:"params,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *RPCError       `json:"error,omitempty"`
}

// idOf decodes a message id; the client only uses integer ids.
func idOf(raw json.RawMessage) (int64, bool) {
	var id int64
	return id, len(raw) > 0 && json.Unmarshal(raw, &id) == nil
}

// answers reports whether m is the response to the request with id.
func (m *message) answers(id json.RawMessage) bool {
	got, ok := idOf(m.ID)
	want, _ := idOf(id)
	return m.Method == "" && ok && got == want
}

// decodeMessages decodes one JSON-RPC message or a batch of them.
func decodeMessages(data []byte) ([]message, error) {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '[' {
		var batch []message
		err := json.Unmarshal(data, &batch)
		return batch, err
	}
	var m message
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	return []message{m}, nil
}

// httpConn is what both transports need to send HTTP requests.
type httpConn struct {
	client  *http.Client
	headers map[string]string // Config.Headers
}

// newRequest builds a request carrying the configured headers and, when
// body is not nil, the JSON body.
func (h httpConn) newRequest(ctx context.Context, method, url string, body []byte) (*http.Request, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return nil, err
	}
	for k, v := range h.headers {
		req.Header.Set(k, v)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// do sends req. Its errors leave out the URL, which may carry a token.
func (h httpConn) do(req *http.Request) (*http.Response, error) {
	resp, err := h.client.Do(req)
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = fmt.Errorf("%s: %w", req.Method, uerr.Err)
	}
	return resp, err
}

// newHTTPError reads the start of resp's body into an HTTPError.
func newHTTPError(resp *http.Response) *HTTPError {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return &HTTPError{Status: resp.StatusCode, Body: string(body)}
}

// mediaType is resp's Content-Type without parameters.
func mediaType(resp *http.Response) string {
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return mt
}

// readJSONReply reads a JSON body, at most maxMessageSize bytes, and
// finds in it the response to the request with id.
func readJSONReply(r io.Reader, id json.RawMessage) (*message, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxMessageSize+1))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	if len(data) > maxMessageSize {
		return nil, fmt.Errorf("response larger than %d bytes", maxMessageSize)
	}
	msgs, err := decodeMessages(data)
	if err != nil {
		return nil, fmt.Errorf("decode response: %w", err)
	}
	for i := range msgs {
		if msgs[i].answers(id) {
			return &msgs[i], nil
		}
	}
	return nil, fmt.Errorf("response does not answer request %s", id)
}

// readStreamReply reads an event stream until the response to the request
// with id, skipping the server's notifications and requests.
func readStreamReply(r io.Reader, id json.RawMessage) (*message, error) {
	events := newSSEReader(r, maxMessageSize)
	for {
		ev, err := events.next()
		if err == io.EOF {
			return nil, fmt.Errorf("event stream ended without a response to request %s", id)
		}
		if err != nil {
			return nil, fmt.Errorf("read event stream: %w", err)
		}
		if ev.Type != "message" || len(bytes.TrimSpace([]byte(ev.Data))) == 0 {
			continue
		}
		msgs, err := decodeMessages([]byte(ev.Data))
		if err != nil {
			return nil, fmt.Errorf("decode event: %w", err)
		}
		for i := range msgs {
			if msgs[i].answers(id) {
				return &msgs[i], nil
			}
		}
	}
}
