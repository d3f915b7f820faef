package audio

import (
	"slices"
	"testing"
)

// However the bytes are cut, the samples come out whole and in order.
func TestPCM16Splitter(t *testing.T) {
	raw := []byte{0x01, 0x02, 0xff, 0xff, 0x00, 0x80, 0x34, 0x12}
	want := []int16{0x0201, -1, -32768, 0x1234}
	for _, cuts := range [][]int{{8}, {1, 7}, {3, 3, 2}, {1, 1, 1, 1, 1, 1, 1, 1}, {0, 5, 0, 3}} {
		var d PCM16Splitter
		var got []int16
		at := 0
		for _, n := range cuts {
			got = append(got, d.Decode(raw[at:at+n])...)
			at += n
		}
		if !slices.Equal(got, want) || d.Pending() {
			t.Errorf("cuts %v: got %v (pending %v), want %v", cuts, got, d.Pending(), want)
		}
	}
	var d PCM16Splitter
	d.Decode([]byte{1, 2, 3})
	if !d.Pending() {
		t.Fatal("an odd byte is not pending")
	}
	d.Reset()
	if got := d.Decode([]byte{4, 5}); !slices.Equal(got, []int16{0x0504}) {
		t.Errorf("after Reset: %v", got)
	}
}
