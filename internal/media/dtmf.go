package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// ErrNoTelephoneEvent means the peer did not negotiate RFC 4733
// telephone-events, so digits must go another way (SIP INFO).
var ErrNoTelephoneEvent = errors.New("peer did not negotiate telephone-event")

// DTMF timing for sent digits: each tone lasts dtmfToneFrames packets, its
// end packet is sent three times (RFC 4733 §2.5.1.4), then dtmfGapFrames of
// plain audio separate it from the next digit.
const (
	dtmfToneFrames = 5 // 100 ms
	dtmfEndRepeats = 3
	dtmfGapFrames  = 3 // 60 ms
	dtmfVolume     = 10
)

// dtmfSender holds digits waiting to be sent and the one in progress. The
// send loop is its only reader.
type dtmfSender struct {
	mu      sync.Mutex
	pending []byte // event codes
	done    []chan struct{}

	// send loop only:
	active  bool
	code    byte
	startTS uint32
	frame   int // packets sent for the current digit
	gap     int // gap frames left before the next digit
}

// SendDTMF queues digits (0-9, *, #, A-D) as RFC 4733 telephone-events. The
// returned channel closes once the last digit has been sent.
func (s *Session) SendDTMF(digits string) (<-chan struct{}, error) {
	if s.eventPT == 0 {
		return nil, ErrNoTelephoneEvent
	}
	codes := make([]byte, 0, len(digits))
	for _, r := range strings.ToUpper(digits) {
		i := strings.IndexRune(DTMFKeys, r)
		if i < 0 {
			return nil, fmt.Errorf("dtmf: %q is not a key (0-9, *, #, A-D)", r)
		}
		codes = append(codes, byte(i))
	}
	done := make(chan struct{})
	if len(codes) == 0 {
		close(done)
		return done, nil
	}
	d := &s.dtmfOut
	d.mu.Lock()
	d.pending = append(d.pending, codes...)
	d.done = append(d.done, done)
	d.mu.Unlock()
	return done, nil
}

// InjectDTMF hands a digit that arrived out of band (SIP INFO) to the
// DTMF sink, as if it had come as a telephone-event.
func (s *Session) InjectDTMF(digit rune) {
	if k := s.dtmf.Load(); k != nil {
		(*k).DTMF(digit)
	}
}

// next returns the telephone-event payload to send in this 20 ms slot,
// or nil to send audio. ts is the slot's RTP timestamp; marker is set on
// the first packet of an event.
func (d *dtmfSender) next(ts uint32, buf []byte) (payload []byte, eventTS uint32, marker bool) {
	if !d.active {
		if d.gap > 0 {
			d.gap--
			return nil, 0, false
		}
		d.mu.Lock()
		if len(d.pending) == 0 {
			for _, c := range d.done {
				close(c)
			}
			d.done = d.done[:0]
			d.mu.Unlock()
			return nil, 0, false
		}
		d.code = d.pending[0]
		d.pending = d.pending[1:]
		d.mu.Unlock()
		d.active, d.startTS, d.frame = true, ts, 0
		marker = true
	}
	d.frame++
	duration := uint16(min(d.frame, dtmfToneFrames) * FrameSamples)
	end := d.frame > dtmfToneFrames
	payload = buf[:4]
	payload[0] = d.code
	payload[1] = dtmfVolume
	if end {
		payload[1] |= 0x80
	}
	binary.BigEndian.PutUint16(payload[2:], duration)
	if d.frame >= dtmfToneFrames+dtmfEndRepeats {
		d.active, d.gap = false, dtmfGapFrames
	}
	return payload, d.startTS, marker
}
