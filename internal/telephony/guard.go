package telephony

import (
	"bytes"
	"net"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// The guard inspects every UDP datagram before the SIP stack sees it. sipgo
// drops what it cannot parse without a word and accepts some requests RFC
// 3261 says to refuse (RFC 4475 has examples of both), so the guard answers
// those itself: 400 for malformed requests, 505 for other SIP versions, 416
// for unsupported URI schemes, 420 for unknown required extensions.
// Requests from scanners and rate-limited sources are dropped (edge.go).
// Responses and keep-alives pass through. It must never return an error:
// that would stop sipgo's UDP read loop.

// maxDatagram bounds what the guard parses.
const maxDatagram = 64 << 10

// refusal is a stateless answer the guard sends instead of passing a request on.
type refusal struct {
	code   int
	reason string
	extra  []sip.Header
}

func (s *Server) filter(info sip.TransportReadProps, data []byte) (out []byte, _ error) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("sip guard panicked; message dropped", "panic", v, "stack", string(debug.Stack()))
			out = nil
		}
	}()
	if !strings.EqualFold(info.Transport, "udp") {
		return data, nil
	}
	if len(bytes.Trim(data, "\r\n\x00 ")) == 0 || len(data) > maxDatagram {
		return nil, nil
	}
	msg, err := s.parser.ParseSIP(data)
	var r *refusal
	switch m := msg.(type) {
	case nil:
		if err != nil {
			s.answerUnparsed(info.RemoteAddr, data)
			return nil, nil
		}
	case *sip.Response:
		if err != nil {
			return nil, nil // nothing can be answered to a broken response
		}
		return data, nil
	case *sip.Request:
		if err != nil {
			s.answerUnparsed(info.RemoteAddr, data)
			return nil, nil
		}
		if info.RemoteAddr != nil && s.dropRequest(m, info.RemoteAddr.String()) {
			return nil, nil
		}
		if headerCTL(data) {
			return nil, nil // any answer would echo it (a bare LF splits the answer's headers)
		}
		r = checkRequest(m, data)
		if r == nil {
			return data, nil
		}
		if m.IsAck() || m.Via() == nil || m.CSeq() == nil {
			return nil, nil // ACK is never answered; without Via and CSeq an answer has no route or match
		}
		res := sip.NewResponseFromRequest(m, r.code, r.reason, nil)
		res.SipVersion = "SIP/2.0" // sipgo copies the request's, e.g. SIP/7.0 in a 505
		for _, h := range r.extra {
			res.AppendHeader(h)
		}
		res.AppendHeader(sip.NewHeader("Server", s.cfg.UserAgent))
		s.writeTo(info.RemoteAddr, []byte(res.String()))
	}
	return nil, nil
}

func (s *Server) writeTo(addr net.Addr, b []byte) {
	if _, err := s.udp.WriteTo(b, addr); err != nil {
		s.log.Debug("sip stateless answer failed", "to", addr.String(), "error", err)
	}
}

// singleHeaders may appear at most once (RFC 3261 §7.3.1, §20).
var singleHeaders = [...]string{"from", "to", "call-id", "cseq", "max-forwards", "content-length", "content-type"}

// checkRequest applies the checks sipgo's parser leaves out.
func checkRequest(req *sip.Request, raw []byte) *refusal {
	if req.SipVersion != "SIP/2.0" {
		return &refusal{code: 505, reason: "Version Not Supported"}
	}
	// Request-Line = Method SP Request-URI SP SIP-Version CRLF: exactly two
	// single spaces (RFC 4475 lwsruri, lwsstart).
	line, _, _ := bytes.Cut(raw, []byte("\r\n"))
	if bytes.Count(line, []byte(" ")) != 2 || bytes.Contains(line, []byte("  ")) {
		return &refusal{code: 400, reason: "Bad Request (malformed Request-Line)"}
	}
	if req.Recipient.Headers.Length() > 0 {
		return &refusal{code: 400, reason: "Bad Request (headers are not allowed in a Request-URI)"}
	}
	if d := req.GetHeader("date"); d != nil && !strings.HasSuffix(strings.TrimSpace(d.Value()), " GMT") {
		return &refusal{code: 400, reason: "Bad Request (Date must be in GMT)"}
	}
	for _, name := range [...]string{"via", "from", "to", "call-id", "cseq"} {
		if req.GetHeader(name) == nil {
			return &refusal{code: 400, reason: "Bad Request (missing " + name + ")"}
		}
	}
	for _, name := range singleHeaders {
		if len(req.GetHeaders(name)) > 1 {
			return &refusal{code: 400, reason: "Bad Request (more than one " + name + ")"}
		}
	}
	cseq := req.CSeq()
	if cseq == nil || !strings.EqualFold(string(cseq.MethodName), string(req.Method)) {
		return &refusal{code: 400, reason: "Bad Request (CSeq method does not match)"}
	}
	if cseq.SeqNo > 1<<31-1 {
		return &refusal{code: 400, reason: "Bad Request (CSeq out of range)"}
	}
	if cl := req.ContentLength(); cl != nil && int(*cl) != len(req.Body()) {
		return &refusal{code: 400, reason: "Bad Request (Content-Length does not match the body)"}
	}
	if n := declaredLength(raw); n < 0 {
		return &refusal{code: 400, reason: "Bad Request (Content-Length is not a valid number)"}
	}
	if mf := req.MaxForwards(); mf != nil && int(*mf) > 255 {
		return &refusal{code: 400, reason: "Bad Request (Max-Forwards out of range)"}
	}
	switch strings.ToLower(req.Recipient.Scheme) {
	case "sip", "sips", "tel":
	default:
		return &refusal{code: 416, reason: "Unsupported URI Scheme"}
	}
	if c := req.Contact(); req.Method == sip.INVITE && (c == nil || c.Address.Host == "") {
		return &refusal{code: 400, reason: "Bad Request (missing Contact)"}
	}
	if req.Method == sip.INVITE && !acceptsSDP(req) {
		return &refusal{code: 406, reason: "Not Acceptable", extra: []sip.Header{sip.NewHeader("Warning", `399 parley "answers are application/sdp"`)}}
	}
	for _, h := range req.GetHeaders("require") {
		if opt := strings.TrimSpace(h.Value()); opt != "" && !strings.EqualFold(opt, "timer") {
			return &refusal{code: 420, reason: "Bad Extension", extra: []sip.Header{sip.NewHeader("Unsupported", opt)}}
		}
	}
	return nil
}

// acceptsSDP reports whether the request's Accept (if any) allows an SDP answer.
func acceptsSDP(req *sip.Request) bool {
	hs := req.GetHeaders("accept")
	if len(hs) == 0 {
		return true
	}
	for _, h := range hs {
		for _, t := range strings.Split(h.Value(), ",") {
			t, _, _ = strings.Cut(strings.ToLower(strings.TrimSpace(t)), ";")
			switch strings.TrimSpace(t) {
			case "application/sdp", "application/*", "*/*", "":
				return true
			}
		}
	}
	return false
}

// declaredLength returns the raw Content-Length value, 0 when absent, and -1
// when it is not a plain non-negative number (sipgo reads "-5" as large).
func declaredLength(raw []byte) int {
	head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	for _, line := range bytes.Split(head, []byte("\r\n")) {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		n := strings.ToLower(strings.TrimSpace(string(name)))
		if n != "content-length" && n != "l" {
			continue
		}
		v, err := strconv.ParseUint(strings.TrimSpace(string(value)), 10, 31)
		if err != nil {
			return -1
		}
		return int(v)
	}
	return 0
}

// headerCTL reports whether the header section has a control character
// other than HTAB and the CRLF that ends a line (RFC 3261 §25.1): sipgo keeps
// a bare CR, LF or a NUL inside the header value, and any answer would echo it.
func headerCTL(raw []byte) bool {
	head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	for i := 0; i < len(head); i++ {
		c := head[i]
		if c == '\r' && i+1 < len(head) && head[i+1] == '\n' {
			i++
			continue
		}
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return true
		}
	}
	return false
}

// answerUnparsed sends 400 to a request sipgo could not parse, when enough
// of it can be read to address an answer (Via, From, To, Call-ID, CSeq).
// Anything less is dropped.
func (s *Server) answerUnparsed(addr net.Addr, raw []byte) {
	head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	lines := strings.Split(string(head), "\r\n")
	if len(lines) < 2 {
		return
	}
	parts := strings.Fields(lines[0])
	if len(parts) < 3 || strings.HasPrefix(parts[0], "SIP/") || !strings.HasPrefix(strings.ToUpper(parts[len(parts)-1]), "SIP/") {
		return // a response, or not SIP at all
	}
	if strings.EqualFold(parts[0], "ACK") {
		return
	}
	short := map[string]string{"v": "via", "f": "from", "t": "to", "i": "call-id"}
	need := map[string]bool{"via": false, "from": false, "to": false, "call-id": false, "cseq": false}
	var b strings.Builder
	b.WriteString("SIP/2.0 400 Bad Request\r\n")
	for _, line := range lines[1:] {
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n := strings.ToLower(strings.TrimSpace(name))
		if long, ok := short[n]; ok {
			n = long
		}
		if _, want := need[n]; !want {
			continue
		}
		value = strings.TrimSpace(value)
		if headerCTL([]byte(value)) || value == "" || (need[n] && n != "via") {
			return // unsafe to echo, or two From/To/Call-ID/CSeq: no one answer
		}
		need[n] = true
		b.WriteString(canonicalName(n) + ": " + value + "\r\n")
	}
	for _, ok := range need {
		if !ok {
			return
		}
	}
	b.WriteString("Server: " + s.cfg.UserAgent + "\r\nContent-Length: 0\r\n\r\n")
	s.writeTo(addr, []byte(b.String()))
}

func canonicalName(n string) string {
	switch n {
	case "call-id":
		return "Call-ID"
	case "cseq":
		return "CSeq"
	}
	return strings.ToUpper(n[:1]) + n[1:]
}
