package stt

import (
	"errors"
	"io"
	"testing"
	"time"
)

func TestQueueDrainsEventsThenError(t *testing.T) {
	var q Queue
	q.Push(Event{Type: Interim, Text: "a"}, Event{Type: Final, Text: "b"})
	q.Push()
	q.Finish(io.EOF)
	q.Push(Event{Type: Final, Text: "late"}) // still delivered: Push after Finish is the caller's choice
	for _, want := range []string{"a", "b", "late"} {
		ev, err := q.Recv()
		if err != nil || ev.Text != want {
			t.Fatalf("Recv = %+v, %v; want %q", ev, err, want)
		}
	}
	if _, err := q.Recv(); err != io.EOF {
		t.Fatalf("Recv after drain: %v, want io.EOF", err)
	}
	if _, err := q.Recv(); err != io.EOF {
		t.Fatalf("Recv again: %v, want io.EOF", err)
	}
}

func TestQueueFirstFinishCounts(t *testing.T) {
	var q Queue
	if q.Finished() || q.Err() != nil {
		t.Fatal("new queue reports finished")
	}
	first := errors.New("first")
	q.Finish(first)
	q.Finish(io.EOF)
	if !q.Finished() || q.Err() != first {
		t.Fatalf("Finished, Err = %v, %v; want true, first", q.Finished(), q.Err())
	}
}

func TestQueueRecvWakes(t *testing.T) {
	var q Queue
	got := make(chan error, 2)
	go func() {
		ev, err := q.Recv()
		if err == nil && ev.Text != "x" {
			err = errors.New("wrong event " + ev.Text)
		}
		got <- err
		_, err = q.Recv()
		got <- err
	}()
	time.Sleep(10 * time.Millisecond)
	q.Push(Event{Type: Final, Text: "x"})
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	boom := errors.New("boom")
	q.Finish(boom)
	if err := <-got; err != boom {
		t.Fatalf("Recv after Finish: %v, want boom", err)
	}
}
