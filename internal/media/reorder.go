package media

import "time"

// reorder puts packets back in sequence order, waits a little for missing
// ones, conceals what never came with silence, and cuts the decoded audio
// into 20 ms frames. It is used by the receive goroutine only.
type reorder struct {
	codec   Codec
	out     func([]int16)
	depth   int
	started bool
	next    uint16 // sequence number expected next
	lastTS  uint32
	lastLen int // samples in the last delivered packet
	slots   []slot
	count   int // packets held
	oldest  time.Time
	pcm     []int16 // decoded audio not yet cut into a frame
}

type slot struct {
	used    bool
	seq     uint16
	ts      uint32
	at      time.Time
	payload []byte
}

// pushResult reports packets concealed or discarded by one operation.
type pushResult struct{ lost, late int }

// maxConceal bounds the silence inserted for one gap (1 s); a longer jump
// means the peer restarted its stream and we simply resynchronise.
const maxConceal = 50

func newReorder(depth int, c Codec, out func([]int16)) *reorder {
	r := &reorder{codec: c, out: out, depth: depth, slots: make([]slot, depth+1)}
	for i := range r.slots {
		r.slots[i].payload = make([]byte, 0, 320)
	}
	return r
}

func (r *reorder) pending() bool { return r.count > 0 }

// push takes one packet.
func (r *reorder) push(seq uint16, ts uint32, payload []byte, at time.Time) pushResult {
	if !r.started {
		r.started, r.next = true, seq
	}
	var res pushResult
	diff := int16(seq - r.next)
	switch {
	case diff < 0:
		if -int(diff) > maxConceal { // the peer restarted its sequence
			r.resync(seq)
			break
		}
		res.late++
		return res
	case int(diff) > maxConceal:
		r.resync(seq)
	}
	diff = int16(seq - r.next)
	if diff == 0 {
		r.play(seq, ts, payload)
		r.drain()
		return res
	}
	i := int(seq) % len(r.slots)
	if r.slots[i].used {
		if r.slots[i].seq == seq {
			res.late++ // duplicate
			return res
		}
	}
	if int(diff) >= r.depth || r.slots[i].used {
		// Waited long enough: what is missing before this packet is lost.
		res.lost += r.skipTo(seq - uint16(r.depth) + 1).lost
		next := r.push(seq, ts, payload, at)
		next.lost += res.lost
		next.late += res.late
		return next
	}
	r.store(i, seq, ts, payload, at)
	return res
}

func (r *reorder) store(i int, seq uint16, ts uint32, payload []byte, at time.Time) {
	sl := &r.slots[i]
	sl.used, sl.seq, sl.ts, sl.at = true, seq, ts, at
	sl.payload = append(sl.payload[:0], payload...)
	if r.count == 0 || at.Before(r.oldest) {
		r.oldest = at
	}
	r.count++
}

// skipGap gives up on the missing packets before the earliest held one.
func (r *reorder) skipGap() pushResult {
	first, found := uint16(0), false
	for _, sl := range r.slots {
		if sl.used && (!found || int16(sl.seq-first) < 0) {
			first, found = sl.seq, true
		}
	}
	if !found {
		return pushResult{}
	}
	return r.skipTo(first)
}

// skipTo conceals every packet from next up to (not including) seq, playing
// held packets on the way.
func (r *reorder) skipTo(seq uint16) pushResult {
	var res pushResult
	for int16(seq-r.next) > 0 {
		i := int(r.next) % len(r.slots)
		if sl := &r.slots[i]; sl.used && sl.seq == r.next {
			r.playSlot(i)
			continue
		}
		r.conceal()
		res.lost++
		r.next++
	}
	r.drain()
	return res
}

func (r *reorder) drain() {
	for r.count > 0 {
		i := int(r.next) % len(r.slots)
		if sl := &r.slots[i]; !sl.used || sl.seq != r.next {
			break
		}
		r.playSlot(i)
	}
	if r.count > 0 {
		r.oldest = time.Time{}
		for _, sl := range r.slots {
			if sl.used && (r.oldest.IsZero() || sl.at.Before(r.oldest)) {
				r.oldest = sl.at
			}
		}
	}
}

func (r *reorder) playSlot(i int) {
	sl := &r.slots[i]
	sl.used = false
	r.count--
	r.play(sl.seq, sl.ts, sl.payload)
}

// play decodes one in-order packet. A timestamp jump with consecutive
// sequence numbers is silence suppression: fill it so audio time stays true.
func (r *reorder) play(seq uint16, ts uint32, payload []byte) {
	if r.lastLen > 0 {
		if gap := int(int32(ts - r.lastTS - uint32(r.lastLen))); gap > 0 && gap <= maxConceal*FrameSamples {
			r.silence(gap)
		}
	}
	r.lastTS, r.lastLen = ts, len(payload)
	r.pcm = r.codec.decode(r.pcm, payload)
	r.next = seq + 1
	r.flushFrames()
}

func (r *reorder) conceal() {
	n := r.lastLen
	if n == 0 {
		n = FrameSamples
	}
	r.lastTS += uint32(n)
	r.silence(n)
}

func (r *reorder) silence(n int) {
	for range n {
		r.pcm = append(r.pcm, 0)
	}
	r.flushFrames()
}

func (r *reorder) flushFrames() {
	k := 0
	for len(r.pcm)-k >= FrameSamples {
		r.out(r.pcm[k : k+FrameSamples])
		k += FrameSamples
	}
	if k > 0 {
		r.pcm = append(r.pcm[:0], r.pcm[k:]...)
	}
}

func (r *reorder) resync(seq uint16) {
	for i := range r.slots {
		r.slots[i].used = false
	}
	r.count, r.next, r.lastLen = 0, seq, 0
}
