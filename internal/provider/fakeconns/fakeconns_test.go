package fakeconns

import (
	"context"
	"testing"
	"time"
)

func TestCloseEndsAndWaits(t *testing.T) {
	s := New()
	if !s.Enter() {
		t.Fatal("Enter refused on an open Set")
	}
	ctx, release := s.Bind(context.Background())
	left := make(chan struct{})
	go func() {
		defer close(left)
		defer s.Leave()
		defer release()
		<-ctx.Done()
	}()
	closed := make(chan struct{})
	go func() {
		s.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	select {
	case <-left:
	default:
		t.Fatal("Close returned before the request left")
	}
	if s.Context().Err() == nil {
		t.Error("Context still live after Close")
	}
	if s.Enter() {
		t.Error("Enter accepted a request after Close")
	}
}

func TestBindEndsWithParent(t *testing.T) {
	s := New()
	defer s.Close()
	parent, cancel := context.WithCancel(context.Background())
	ctx, release := s.Bind(parent)
	defer release()
	cancel()
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("bound context outlived its parent")
	}
}
