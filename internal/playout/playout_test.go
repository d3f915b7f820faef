package playout

import "testing"

func TestStopsAtOnce(t *testing.T) {
	q := New()
	q.Start(1)
	pcm := make([]int16, 1000)
	for i := range pcm {
		pcm[i] = 100
	}
	q.Push(1, pcm)
	q.Push(2, make([]int16, 50)) // not the playing reply: dropped
	frame := make([]int16, 160)
	if !q.ReadFrame(frame) || frame[0] != 100 {
		t.Fatal("first frame not played")
	}
	if st := q.State(); st.Reply != 1 || st.FirstAt.IsZero() || st.Queued != 1000 {
		t.Fatalf("state after the first frame = %+v", st)
	}
	q.Pause(true)
	if q.ReadFrame(frame) {
		t.Fatal("paused queue still sends")
	}
	q.Pause(false)
	played, queued := q.Stop()
	if played != 160 || queued != 1000 {
		t.Fatalf("Stop = %d, %d", played, queued)
	}
	if q.ReadFrame(frame) {
		t.Fatal("stopped queue still sends")
	}
}

func TestSignalsFirstFrameAndEnd(t *testing.T) {
	q := New()
	q.Start(7)
	q.Push(7, make([]int16, 200))
	select {
	case <-q.Wake():
	default:
		t.Fatal("first audio did not wake the sender")
	}
	q.Finish(7)
	frame := make([]int16, 160)
	q.ReadFrame(frame)
	<-q.Signal() // first frame
	q.ReadFrame(frame)
	if frame[40] != 0 {
		t.Fatal("the short last frame is not padded with silence")
	}
	if q.ReadFrame(frame) {
		t.Fatal("played past the end")
	}
	<-q.Signal() // ran out
	if st := q.State(); st.DoneAt.IsZero() || st.Played != 200 {
		t.Fatalf("state at the end = %+v", st)
	}
}
