package audio

// PCM16Splitter decodes 16-bit little-endian PCM that arrives in pieces cut
// at arbitrary byte boundaries (streamed HTTP bodies, websocket messages):
// an odd trailing byte is carried over to the next piece. The zero value is
// ready; it is not safe for concurrent use.
type PCM16Splitter struct {
	carry   byte
	pending bool // carry holds the low byte of a split sample
}

// Decode returns the whole samples of the carried byte and p, in a new
// slice the caller owns.
func (d *PCM16Splitter) Decode(p []byte) []int16 {
	out := make([]int16, 0, (len(p)+1)/2)
	if d.pending && len(p) > 0 {
		out = append(out, int16(uint16(d.carry)|uint16(p[0])<<8))
		p, d.pending = p[1:], false
	}
	for ; len(p) >= 2; p = p[2:] {
		out = append(out, int16(uint16(p[0])|uint16(p[1])<<8))
	}
	if len(p) == 1 {
		d.carry, d.pending = p[0], true
	}
	return out
}

// Pending reports whether half a sample is waiting for its other byte.
func (d *PCM16Splitter) Pending() bool { return d.pending }

// Reset forgets a carried byte.
func (d *PCM16Splitter) Reset() { d.pending = false }
