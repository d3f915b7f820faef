package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// sseTransport is the legacy HTTP+SSE transport: a GET opens an event
// stream whose first event names the endpoint to POST messages to, and
// responses come back on the stream. One goroutine, owned by the
// transport, reads the stream; close stops it and waits for it.
type sseTransport struct {
	httpConn
	endpoint string             // where messages are POSTed
	cancel   context.CancelFunc // ends the stream
	done     chan struct{}      // closed when the reader has exited
	err      error              // why the stream ended; set before done is closed
	closing  atomic.Bool        // close was called

	mu      sync.Mutex
	pending map[int64]chan *message // requests awaiting their response
}

// openSSE opens the event stream at u and waits for its endpoint event.
// ctx and timeout bound the opening only; the stream lasts until close.
func openSSE(ctx context.Context, conn httpConn, u *url.URL, timeout time.Duration) (*sseTransport, error) {
	streamCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	t := &sseTransport{httpConn: conn, cancel: cancel, done: make(chan struct{}), pending: map[int64]chan *message{}}
	openCtx, openCancel := context.WithTimeout(ctx, timeout)
	defer openCancel()
	stop := context.AfterFunc(openCtx, cancel)
	body, events, err := t.open(streamCtx, u)
	if !stop() && err == nil { // openCtx ended and cancelled the stream meanwhile
		body.Close()
		err = errors.New("opening interrupted")
	}
	if err != nil {
		cancel()
		return nil, contextError(openCtx, err)
	}
	go t.read(body, events)
	return t, nil
}

// open sends the GET and reads up to the endpoint event, which it stores
// in t.endpoint. It returns the stream's body, open, and its reader.
func (t *sseTransport) open(ctx context.Context, u *url.URL) (io.ReadCloser, *sseReader, error) {
	req, err := t.newRequest(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := t.do(req)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, nil, newHTTPError(resp)
	}
	if mt := mediaType(resp); mt != "text/event-stream" {
		resp.Body.Close()
		return nil, nil, fmt.Errorf("unexpected content type %q", mt)
	}
	events := newSSEReader(resp.Body, maxMessageSize)
	if t.endpoint, err = readEndpoint(events, u); err != nil {
		resp.Body.Close()
		return nil, nil, err
	}
	return resp.Body, events, nil
}

// readEndpoint reads events up to the endpoint event and resolves its
// URI against base. The endpoint must share base's origin: a server must
// not be able to send the client's messages, and headers, elsewhere.
func readEndpoint(events *sseReader, base *url.URL) (string, error) {
	for {
		ev, err := events.next()
		if errors.Is(err, io.EOF) {
			return "", errors.New("event stream ended before the endpoint event")
		}
		if err != nil {
			return "", fmt.Errorf("read endpoint event: %w", err)
		}
		if ev.Type != "endpoint" {
			continue
		}
		ep, err := base.Parse(strings.TrimSpace(ev.Data))
		if err != nil {
			return "", fmt.Errorf("endpoint event: %w", err)
		}
		if origin(ep) != origin(base) {
			return "", fmt.Errorf("endpoint origin %s differs from the event stream's %s; refusing it", origin(ep), origin(base))
		}
		return ep.String(), nil
	}
}

// origin is u's scheme, host and port, normalized.
func origin(u *url.URL) string {
	port := u.Port()
	if port == "" {
		switch strings.ToLower(u.Scheme) {
		case "http":
			port = "80"
		case "https":
			port = "443"
		}
	}
	return strings.ToLower(u.Scheme) + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// read delivers the responses on the stream to the requests waiting for
// them until the stream ends.
func (t *sseTransport) read(body io.ReadCloser, events *sseReader) {
	defer close(t.done)
	defer body.Close()
	for {
		ev, err := events.next()
		if err != nil {
			t.err = err
			return
		}
		if ev.Type != "message" || strings.TrimSpace(ev.Data) == "" {
			continue
		}
		msgs, err := decodeMessages([]byte(ev.Data))
		if err != nil {
			t.err = fmt.Errorf("decode message event: %w", err)
			return
		}
		for i := range msgs {
			t.deliver(&msgs[i])
		}
	}
}

// deliver hands a response to the request waiting for it; other messages
// (the server's requests and notifications, late responses) are dropped.
func (t *sseTransport) deliver(m *message) {
	id, ok := idOf(m.ID)
	if !ok || m.Method != "" {
		return
	}
	t.mu.Lock()
	ch := t.pending[id]
	delete(t.pending, id)
	t.mu.Unlock()
	if ch != nil {
		ch <- m // buffered; each channel gets one response
	}
}

func (t *sseTransport) roundTrip(ctx context.Context, msg *message) (*message, error) {
	var reply chan *message
	if id, ok := idOf(msg.ID); ok {
		reply = make(chan *message, 1)
		t.mu.Lock()
		t.pending[id] = reply
		t.mu.Unlock()
		defer func() {
			t.mu.Lock()
			delete(t.pending, id)
			t.mu.Unlock()
		}()
	}
	select {
	case <-t.done:
		return nil, t.streamErr()
	default:
	}
	if err := t.post(ctx, msg); err != nil {
		return nil, err
	}
	if reply == nil {
		return nil, nil
	}
	select {
	case m := <-reply:
		return m, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.done:
		select {
		case m := <-reply: // it arrived just before the stream ended
			return m, nil
		default:
			return nil, t.streamErr()
		}
	}
}

// post sends msg to the endpoint.
func (t *sseTransport) post(ctx context.Context, msg *message) error {
	body, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("encode message: %w", err)
	}
	req, err := t.newRequest(ctx, http.MethodPost, t.endpoint, body)
	if err != nil {
		return err
	}
	resp, err := t.do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return newHTTPError(resp)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	return nil
}

// streamErr says why the stream ended; call it only after done is closed.
func (t *sseTransport) streamErr() error {
	switch {
	case t.closing.Load():
		return errors.New("session closed")
	case errors.Is(t.err, io.EOF):
		return errors.New("server closed the event stream")
	}
	return fmt.Errorf("event stream failed: %w", t.err)
}

// close ends the stream and waits for the reader to exit.
func (t *sseTransport) close() error {
	t.closing.Store(true)
	t.cancel()
	<-t.done
	return nil
}
