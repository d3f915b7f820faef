package netguard

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"
)

// blockedRanges is consulted in order and the first match wins, so the
// metadata addresses come before the ranges that contain them. It is never
// modified.
var blockedRanges = []struct {
	prefix netip.Prefix
	reason Reason
}{
	{netip.MustParsePrefix("169.254.169.254/32"), ReasonMetadata}, // AWS, GCP, Azure, OpenStack, ...
	{netip.MustParsePrefix("100.100.100.200/32"), ReasonMetadata}, // Alibaba Cloud
	{netip.MustParsePrefix("168.63.129.16/32"), ReasonMetadata},   // Azure WireServer
	{netip.MustParsePrefix("fd00:ec2::254/128"), ReasonMetadata},  // AWS over IPv6

	{netip.MustParsePrefix("0.0.0.0/8"), ReasonUnspecified},
	{netip.MustParsePrefix("10.0.0.0/8"), ReasonPrivate},
	{netip.MustParsePrefix("100.64.0.0/10"), ReasonPrivate}, // CGNAT
	{netip.MustParsePrefix("127.0.0.0/8"), ReasonLoopback},
	{netip.MustParsePrefix("169.254.0.0/16"), ReasonLinkLocal},
	{netip.MustParsePrefix("172.16.0.0/12"), ReasonPrivate},
	{netip.MustParsePrefix("192.0.0.0/24"), ReasonReserved},   // IETF protocol assignments
	{netip.MustParsePrefix("192.0.2.0/24"), ReasonReserved},   // TEST-NET-1
	{netip.MustParsePrefix("192.88.99.0/24"), ReasonReserved}, // 6to4 relay anycast
	{netip.MustParsePrefix("192.168.0.0/16"), ReasonPrivate},
	{netip.MustParsePrefix("198.18.0.0/15"), ReasonReserved},   // benchmarking
	{netip.MustParsePrefix("198.51.100.0/24"), ReasonReserved}, // TEST-NET-2
	{netip.MustParsePrefix("203.0.113.0/24"), ReasonReserved},  // TEST-NET-3
	{netip.MustParsePrefix("224.0.0.0/4"), ReasonMulticast},
	{netip.MustParsePrefix("240.0.0.0/4"), ReasonReserved}, // includes 255.255.255.255

	{netip.MustParsePrefix("::/128"), ReasonUnspecified},
	{netip.MustParsePrefix("::1/128"), ReasonLoopback},
	{netip.MustParsePrefix("fc00::/7"), ReasonPrivate},
	{netip.MustParsePrefix("fe80::/10"), ReasonLinkLocal},
	{netip.MustParsePrefix("ff00::/8"), ReasonMulticast},
	{netip.MustParsePrefix("2001::/23"), ReasonReserved},     // IETF protocol assignments, incl. Teredo
	{netip.MustParsePrefix("2001:db8::/32"), ReasonReserved}, // documentation
	{netip.MustParsePrefix("3fff::/20"), ReasonReserved},     // documentation
}

var (
	nat64         = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour     = netip.MustParsePrefix("2002::/16")
	globalUnicast = netip.MustParsePrefix("2000::/3")
)

// classify returns why a may not be dialled, or "" for a public address.
// IPv6 outside 2000::/3 is reserved unless listed otherwise; NAT64 and 6to4
// addresses are reserved when the IPv4 address they carry is not public.
func classify(a netip.Addr) Reason {
	a = canonical(a).WithZone("")
	if !a.IsValid() {
		return ReasonUnspecified
	}
	for _, r := range blockedRanges {
		if r.prefix.Contains(a) {
			return r.reason
		}
	}
	if a.Is4() {
		return ""
	}
	b := a.As16()
	var v4 netip.Addr
	switch {
	case nat64.Contains(a):
		v4 = netip.AddrFrom4([4]byte(b[12:]))
	case sixToFour.Contains(a):
		v4 = netip.AddrFrom4([4]byte(b[2:6]))
	case !globalUnicast.Contains(a):
		return ReasonReserved
	default:
		return ""
	}
	if classify(v4) != "" {
		return ReasonReserved
	}
	return ""
}

// canonical turns IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible
// (::a.b.c.d) addresses into plain IPv4, leaving :: and ::1 as they are.
func canonical(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if !a.Is6() {
		return a
	}
	b := a.As16()
	if [12]byte(b[:12]) == [12]byte{} && binary.BigEndian.Uint32(b[12:]) > 1 {
		return netip.AddrFrom4([4]byte(b[12:]))
	}
	return a
}

// parseLegacyIPv4 parses the IPv4 spellings that inet_aton(3) and browsers
// accept besides the dotted quad: one to four dot-separated parts, each
// decimal, octal (leading 0) or hexadecimal (leading 0x), the last part
// filling the remaining bytes ("127.1", "2130706433", "0x7f.1", "0177.0.0.1").
// One trailing dot is accepted, as browsers do.
func parseLegacyIPv4(s string) (netip.Addr, bool) {
	parts := strings.Split(strings.TrimSuffix(s, "."), ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var v uint32
	for i, p := range parts {
		n, err := parseInetPart(p)
		if err != nil {
			return netip.Addr{}, false
		}
		if i < len(parts)-1 {
			if n > 0xff {
				return netip.Addr{}, false
			}
			v |= uint32(n) << (8 * (3 - i))
			continue
		}
		if n > 1<<(8*(5-len(parts)))-1 {
			return netip.Addr{}, false
		}
		v |= uint32(n)
	}
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b), true
}

func parseInetPart(p string) (uint64, error) {
	switch {
	case len(p) > 2 && (p[:2] == "0x" || p[:2] == "0X"):
		return strconv.ParseUint(p[2:], 16, 32)
	case len(p) > 1 && p[0] == '0':
		return strconv.ParseUint(p[1:], 8, 32)
	}
	return strconv.ParseUint(p, 10, 32)
}
