package media

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// ErrNotAcceptable means the offer has no audio stream Parley can use; SIP
// answers it with 488 Not Acceptable Here.
var ErrNotAcceptable = errors.New("no acceptable audio stream")

// Offer is what Parley needs from a peer's SDP offer.
type Offer struct {
	// Addr is where the peer wants RTP.
	Addr netip.AddrPort
	// Codec is the first offered codec Parley supports, in the peer's order.
	Codec Codec
	// EventPT is the payload type of telephone-event/8000, 0 when absent.
	EventPT uint8
	// Ptime is the requested packet time in milliseconds (0 = not given).
	Ptime int
	// OnHold is true when the stream is sendonly/inactive or the address is
	// 0.0.0.0 (RFC 3264 §8.4).
	OnHold bool
	// Secure is true for an RTP/SAVP stream (SDES-SRTP, RFC 4568); Crypto
	// then holds its usable a=crypto attributes in the peer's order.
	Secure bool
	Crypto []Crypto
}

// ParseOffer reads an SDP offer and picks the audio stream and codec.
// A syntax error is reported as such; an offer without a usable audio
// stream wraps ErrNotAcceptable.
func ParseOffer(body []byte) (*Offer, error) {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(string(body)); err != nil {
		return nil, fmt.Errorf("parse sdp: %w", err)
	}
	for _, m := range d.MediaDescriptions {
		if m.MediaName.Media != "audio" || m.MediaName.Port.Value == 0 {
			continue
		}
		secure := hasProto(m.MediaName.Protos, "RTP", "SAVP")
		if !secure && !hasProto(m.MediaName.Protos, "RTP", "AVP") {
			continue
		}
		conn := m.ConnectionInformation
		if conn == nil {
			conn = d.ConnectionInformation
		}
		if conn == nil || conn.Address == nil {
			return nil, fmt.Errorf("%w: audio stream without a connection address", ErrNotAcceptable)
		}
		ip, err := netip.ParseAddr(conn.Address.Address)
		if err != nil {
			return nil, fmt.Errorf("%w: connection address %q is not an IP address", ErrNotAcceptable, conn.Address.Address)
		}
		port := m.MediaName.Port.Value
		if port < 1 || port > 65535 {
			return nil, fmt.Errorf("%w: port %d", ErrNotAcceptable, port)
		}
		o := &Offer{Addr: netip.AddrPortFrom(ip, uint16(port)), OnHold: ip.IsUnspecified(), Secure: secure}
		rtpmap := map[uint8]string{}
		for _, a := range m.Attributes {
			switch a.Key {
			case "rtpmap":
				pt, enc, ok := strings.Cut(a.Value, " ")
				if n, err := strconv.ParseUint(pt, 10, 7); ok && err == nil {
					rtpmap[uint8(n)] = strings.ToLower(enc)
				}
			case "ptime":
				o.Ptime, _ = strconv.Atoi(strings.TrimSpace(a.Value))
			case "sendonly", "inactive":
				o.OnHold = true
			case "crypto":
				if c, err := parseCrypto(a.Value); err == nil && secure {
					o.Crypto = append(o.Crypto, c)
				}
			}
		}
		found := false
		for _, f := range m.MediaName.Formats {
			n, err := strconv.ParseUint(f, 10, 7) // RTP payload types are 7 bits (RFC 3550 §5.1)
			if err != nil {
				continue
			}
			pt := uint8(n)
			enc, mapped := rtpmap[pt]
			if enc == "telephone-event/8000" {
				o.EventPT = pt
				continue
			}
			if found {
				continue
			}
			for _, c := range supported {
				// Static payload types may come without rtpmap (RFC 3551).
				if (mapped && strings.HasPrefix(enc, strings.ToLower(c.Name)+"/8000")) || (!mapped && pt == c.PayloadType) {
					o.Codec, found = Codec{Name: c.Name, PayloadType: pt, ClockRate: 8000}, true
					break
				}
			}
		}
		if !found {
			return nil, fmt.Errorf("%w: no PCMU or PCMA among formats %v", ErrNotAcceptable, m.MediaName.Formats)
		}
		if secure && len(o.Crypto) == 0 {
			return nil, fmt.Errorf("%w: RTP/SAVP stream without a supported a=crypto (want %s or %s, inline key, no MKI)", ErrNotAcceptable, SuiteAES128SHA1_80, SuiteAES128SHA1_32)
		}
		return o, nil
	}
	return nil, fmt.Errorf("%w: no RTP/AVP or RTP/SAVP audio stream", ErrNotAcceptable)
}

func hasProto(protos []string, want ...string) bool {
	if len(protos) != len(want) {
		return false
	}
	for i := range want {
		if !strings.EqualFold(protos[i], want[i]) {
			return false
		}
	}
	return true
}

// Answer writes the SDP answer for a negotiated stream: the chosen codec,
// telephone-event when the peer offered it, 20 ms packets, sendrecv. With
// crypto (our key, under the tag and suite chosen from the offer) the
// stream is RTP/SAVP.
func Answer(local netip.AddrPort, sessionID uint64, c Codec, eventPT uint8, crypto *Crypto) []byte {
	var b strings.Builder
	formats := strconv.Itoa(int(c.PayloadType))
	if eventPT != 0 {
		formats += " " + strconv.Itoa(int(eventPT))
	}
	var cs []Crypto
	if crypto != nil {
		cs = []Crypto{*crypto}
	}
	writeSession(&b, local, sessionID, formats, cs)
	fmt.Fprintf(&b, "a=rtpmap:%d %s/%d\r\n", c.PayloadType, c.Name, c.ClockRate)
	if eventPT != 0 {
		fmt.Fprintf(&b, "a=rtpmap:%d telephone-event/8000\r\na=fmtp:%d 0-16\r\n", eventPT, eventPT)
	}
	b.WriteString("a=ptime:20\r\na=sendrecv\r\n")
	return []byte(b.String())
}

// writeSession writes the session lines and the audio m= line, RTP/SAVP
// with its a=crypto lines when there are any.
func writeSession(b *strings.Builder, local netip.AddrPort, sessionID uint64, formats string, crypto []Crypto) {
	ip := local.Addr()
	family := "IP4"
	if ip.Is6() && !ip.Is4In6() {
		family = "IP6"
	}
	fmt.Fprintf(b, "v=0\r\no=parley %d %d IN %s %s\r\ns=parley\r\nc=IN %s %s\r\nt=0 0\r\n", sessionID, sessionID, family, ip, family, ip)
	proto := "RTP/AVP"
	if len(crypto) > 0 {
		proto = "RTP/SAVP"
	}
	fmt.Fprintf(b, "m=audio %d %s %s\r\n", local.Port(), proto, formats)
	for _, c := range crypto {
		fmt.Fprintf(b, "a=crypto:%s\r\n", c.attribute())
	}
}

// offerEventPT is the payload type Parley offers for telephone-event.
const offerEventPT = 101

// OfferSDP writes an SDP offer for an outbound call: PCMU and PCMA in order
// of preference plus telephone-event, 20 ms packets, sendrecv. The answer is
// read with ParseOffer, which picks the first codec the peer kept. With
// crypto the stream is offered as RTP/SAVP with those a=crypto lines.
func OfferSDP(local netip.AddrPort, sessionID uint64, crypto []Crypto) []byte {
	var formats []string
	for _, c := range supported {
		formats = append(formats, strconv.Itoa(int(c.PayloadType)))
	}
	formats = append(formats, strconv.Itoa(offerEventPT))
	var b strings.Builder
	writeSession(&b, local, sessionID, strings.Join(formats, " "), crypto)
	for _, c := range supported {
		fmt.Fprintf(&b, "a=rtpmap:%d %s/%d\r\n", c.PayloadType, c.Name, c.ClockRate)
	}
	fmt.Fprintf(&b, "a=rtpmap:%d telephone-event/8000\r\na=fmtp:%d 0-16\r\n", offerEventPT, offerEventPT)
	b.WriteString("a=ptime:20\r\na=sendrecv\r\n")
	return []byte(b.String())
}

// SDES is the key exchange of one SRTP stream: the key we send with and
// the key the peer sends with, under the same tag and suite.
type SDES struct {
	Local, Remote Crypto
}

// AnswerCrypto picks the first offered a=crypto Parley supports, in the
// peer's order, and makes our own key for it (RFC 4568 §7.1.1).
func AnswerCrypto(o *Offer) (*SDES, error) {
	for _, c := range o.Crypto {
		local, err := NewCrypto(c.Tag, c.Suite)
		if err != nil {
			return nil, err
		}
		return &SDES{Local: local, Remote: c}, nil
	}
	return nil, fmt.Errorf("%w: no supported a=crypto in the offer", ErrNotAcceptable)
}

// OfferCrypto makes our a=crypto lines for an offer: one per supported
// suite, each with its own key, tags 1, 2, … in preference order.
func OfferCrypto() ([]Crypto, error) {
	out := make([]Crypto, 0, len(suites))
	for i, s := range suites {
		c, err := NewCrypto(i+1, s)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// MatchAnswer pairs the peer's answer with the offered line it accepted:
// same tag and suite (RFC 4568 §7.1.3).
func MatchAnswer(offered []Crypto, answer *Offer) (*SDES, error) {
	if !answer.Secure {
		return nil, fmt.Errorf("%w: SRTP was offered and the answer is plain RTP/AVP", ErrNotAcceptable)
	}
	for _, a := range answer.Crypto {
		for _, o := range offered {
			if o.Tag == a.Tag && o.Suite == a.Suite {
				return &SDES{Local: o, Remote: a}, nil
			}
		}
	}
	return nil, fmt.Errorf("%w: the answer's a=crypto matches no offered tag and suite", ErrNotAcceptable)
}
