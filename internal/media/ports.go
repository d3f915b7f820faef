package media

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// ErrNoPorts means every RTP port pair in the range is in use.
var ErrNoPorts = errors.New("no free RTP port in range")

// PortRange is an inclusive range of UDP ports for RTP (even) and RTCP
// (the odd port above).
type PortRange struct{ Min, Max int }

// ParsePortRange reads "10000-20000".
func ParsePortRange(s string) (PortRange, error) {
	lo, hi, ok := strings.Cut(strings.TrimSpace(s), "-")
	a, errA := strconv.Atoi(strings.TrimSpace(lo))
	b, errB := strconv.Atoi(strings.TrimSpace(hi))
	if !ok || errA != nil || errB != nil {
		return PortRange{}, fmt.Errorf("port range %q: want MIN-MAX, e.g. 10000-20000", s)
	}
	r := PortRange{Min: a, Max: b}
	if a < 1024 || b > 65535 || b-a < 3 {
		return PortRange{}, fmt.Errorf("port range %q: want 1024 ≤ MIN, MAX ≤ 65535 and at least two port pairs", s)
	}
	return r, nil
}

func (r PortRange) String() string { return fmt.Sprintf("%d-%d", r.Min, r.Max) }

// listenPair binds an RTP socket on an even port of r and RTCP on the next
// port, trying random pairs so concurrent calls rarely collide.
func listenPair(ip netip.Addr, r PortRange) (rtp, rtcp *net.UDPConn, err error) {
	first := (r.Min + 1) &^ 1
	pairs := (r.Max - first + 1) / 2
	if pairs <= 0 {
		return nil, nil, ErrNoPorts
	}
	start := rand.IntN(pairs)
	for i := range pairs {
		port := first + 2*((start+i)%pairs)
		a, errA := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port))))
		if errA != nil {
			continue
		}
		b, errB := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port+1))))
		if errB != nil {
			a.Close()
			continue
		}
		return a, b, nil
	}
	return nil, nil, ErrNoPorts
}
