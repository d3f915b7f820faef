package mcp

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"time"
)

// event is one dispatched server-sent event.
type event struct {
	Type  string        // the event field; "message" when there was none
	Data  string        // the data lines joined with "\n"
	ID    string        // the last event ID seen on the stream
	Retry time.Duration // the reconnection time given in this event's block, if any
}

// sseReader parses an event stream as the HTML standard describes
// (https://html.spec.whatwg.org/multipage/server-sent-events.html),
// with lines and events capped at max bytes.
type sseReader struct {
	r       *bufio.Reader
	max     int
	line    []byte
	afterCR bool // the last line ended in CR: skip an LF that follows
	started bool // the byte order mark has been dealt with
	lastID  string
}

func newSSEReader(r io.Reader, max int) *sseReader {
	return &sseReader{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// next returns the next event. At the end of the stream it returns
// io.EOF; an event cut off by the end is dropped.
func (p *sseReader) next() (event, error) {
	var ev event
	var data []byte
	for {
		line, err := p.readLine()
		if err != nil {
			return event{}, err
		}
		if len(line) == 0 { // dispatch
			if len(data) == 0 {
				ev = event{}
				continue
			}
			ev.Data = string(data[:len(data)-1])
			ev.ID = p.lastID
			if ev.Type == "" {
				ev.Type = "message"
			}
			return ev, nil
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "": // a comment
		case "event":
			ev.Type = string(value)
		case "data":
			if len(data)+len(value)+1 > p.max {
				return event{}, fmt.Errorf("event larger than %d bytes", p.max)
			}
			data = append(append(data, value...), '\n')
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				p.lastID = string(value)
			}
		case "retry":
			if ms, err := strconv.ParseUint(string(value), 10, 31); err == nil {
				ev.Retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
}

// readLine returns the next line without its ending (CRLF, LF or CR).
// The slice is valid until the next call.
func (p *sseReader) readLine() ([]byte, error) {
	p.line = p.line[:0]
	if !p.started {
		p.started = true
		if bom, err := p.r.Peek(3); err == nil && string(bom) == "\uFEFF" {
			_, _ = p.r.Discard(3)
		}
	}
	if p.afterCR {
		p.afterCR = false
		if b, err := p.r.Peek(1); err == nil && b[0] == '\n' {
			_, _ = p.r.Discard(1)
		}
	}
	for {
		if _, err := p.r.Peek(1); err != nil {
			return nil, err
		}
		buf, _ := p.r.Peek(p.r.Buffered())
		i := bytes.IndexAny(buf, "\r\n")
		end := i
		if i < 0 {
			end = len(buf)
		}
		if len(p.line)+end > p.max {
			return nil, fmt.Errorf("event stream line longer than %d bytes", p.max)
		}
		p.line = append(p.line, buf[:end]...)
		if i < 0 {
			_, _ = p.r.Discard(end)
			continue
		}
		p.afterCR = buf[i] == '\r'
		_, _ = p.r.Discard(i + 1)
		return p.line, nil
	}
}
