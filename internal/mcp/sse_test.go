package mcp

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestSSEReader(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []event
	}{
		{"one event", "data: hello\n\n",
			[]event{{Type: "message", Data: "hello"}}},
		{"multi-line data", "data: a\ndata: b\ndata:\ndata: c\n\n",
			[]event{{Type: "message", Data: "a\nb\n\nc"}}},
		{"event names", "event: endpoint\ndata: /messages?sessionId=1\n\nevent: message\ndata: {}\n\ndata: x\n\n",
			[]event{{Type: "endpoint", Data: "/messages?sessionId=1"}, {Type: "message", Data: "{}"}, {Type: "message", Data: "x"}}},
		{"comments", ": hello\ndata: a\n: in between\ndata: b\n\n:keepalive\n\n",
			[]event{{Type: "message", Data: "a\nb"}}},
		{"CRLF", "event: e\r\ndata: a\r\ndata: b\r\n\r\ndata: c\r\n\r\n",
			[]event{{Type: "e", Data: "a\nb"}, {Type: "message", Data: "c"}}},
		{"CR", "data: a\rdata: b\r\rdata: c\r\r",
			[]event{{Type: "message", Data: "a\nb"}, {Type: "message", Data: "c"}}},
		{"mixed endings", "data: a\r\ndata: b\rdata: c\n\r\n",
			[]event{{Type: "message", Data: "a\nb\nc"}}},
		{"one space stripped", "data:no space\ndata:  two spaces\n\n",
			[]event{{Type: "message", Data: "no space\n two spaces"}}},
		{"field without colon", "data\ndata\n\n",
			[]event{{Type: "message", Data: "\n"}}},
		{"event without data is dropped", "event: lonely\n\ndata: next\n\n",
			[]event{{Type: "message", Data: "next"}}},
		{"ids persist", "id: 7\ndata: a\n\ndata: b\n\nid\ndata: c\n\n",
			[]event{{Type: "message", Data: "a", ID: "7"}, {Type: "message", Data: "b", ID: "7"}, {Type: "message", Data: "c"}}},
		{"id with NUL ignored", "id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n",
			[]event{{Type: "message", Data: "a", ID: "1"}, {Type: "message", Data: "b", ID: "1"}}},
		{"retry", "retry: 1500\ndata: a\n\nretry: soon\ndata: b\n\n",
			[]event{{Type: "message", Data: "a", Retry: 1500 * time.Millisecond}, {Type: "message", Data: "b"}}},
		{"unknown fields ignored", "foo: bar\ndata: a\n\n",
			[]event{{Type: "message", Data: "a"}}},
		{"byte order mark", "\uFEFFdata: a\n\n",
			[]event{{Type: "message", Data: "a"}}},
		{"cut-off event dropped", "data: a\n\ndata: b\n",
			[]event{{Type: "message", Data: "a"}}},
	}
	for _, tt := range tests {
		for _, reader := range []struct {
			name string
			wrap func(io.Reader) io.Reader
		}{{"whole", func(r io.Reader) io.Reader { return r }}, {"bytewise", iotest.OneByteReader}} {
			t.Run(tt.name+"/"+reader.name, func(t *testing.T) {
				p := newSSEReader(reader.wrap(strings.NewReader(tt.input)), 1024)
				var got []event
				for {
					ev, err := p.next()
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						t.Fatalf("next: %v", err)
					}
					got = append(got, ev)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("events\n got %q\nwant %q", got, tt.want)
				}
			})
		}
	}
}

func TestSSEReaderLimits(t *testing.T) {
	for name, input := range map[string]string{
		"long line":  "data: " + strings.Repeat("x", 100) + "\n\n",
		"long event": strings.Repeat("data: "+strings.Repeat("x", 30)+"\n", 4) + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := newSSEReader(strings.NewReader(input), 64).next()
			if err == nil || !strings.Contains(err.Error(), "64 bytes") {
				t.Fatalf("next = %v, want a size error", err)
			}
		})
	}
}
