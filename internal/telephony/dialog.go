package telephony

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/parley-voice/parley/internal/media"
)

// TransferError says why a blind transfer (REFER) did not complete.
// Refused is true when the peer would not even try (REFER answered with an
// error), so a bridged transfer is the way forward.
type TransferError struct {
	Code    int
	Reason  string
	Refused bool
}

func (e *TransferError) Error() string {
	if e.Refused {
		return fmt.Sprintf("transfer refused: sip %d %s", e.Code, e.Reason)
	}
	return fmt.Sprintf("transfer failed: sip %d %s", e.Code, e.Reason)
}

// ErrTransferTimeout means the peer accepted the REFER but never reported
// how the new call went.
var ErrTransferTimeout = errors.New("transfer: no final NOTIFY from the peer")

// Ended is closed once the call is over and its handler has returned.
func (c *Call) Ended() <-chan struct{} { return c.ended }

// Transfer hands the peer to target with REFER (RFC 3515) and follows its
// NOTIFY reports until the new call is answered or fails. It returns nil
// when the transfer succeeded; the caller then hangs up this call.
func (c *Call) Transfer(ctx context.Context, target string) error {
	req := c.request(sip.REFER)
	req.AppendHeader(sip.NewHeader("Refer-To", "<"+target+">"))
	req.AppendHeader(sip.NewHeader("Referred-By", "<"+c.contact.Address.String()+">"))
	req.AppendHeader(&c.contact)
	res, err := c.do(ctx, req)
	if err != nil {
		return fmt.Errorf("send refer: %w", err)
	}
	if res.StatusCode >= 300 {
		return &TransferError{Code: int(res.StatusCode), Reason: res.Reason, Refused: true}
	}
	for {
		select {
		case code := <-c.notify:
			switch {
			case code < 200:
				continue
			case code < 300:
				return nil
			default:
				return &TransferError{Code: code, Reason: "reported by NOTIFY"}
			}
		case <-c.ended:
			return ErrRemoteHangup
		case <-ctx.Done():
			return ErrTransferTimeout
		}
	}
}

// SendDTMF sends digits to the peer: as RFC 4733 telephone-events when
// negotiated, else one SIP INFO (application/dtmf-relay) per digit. It
// returns once the digits are sent.
func (c *Call) SendDTMF(ctx context.Context, digits string) error {
	done, err := c.Media.SendDTMF(digits)
	if err == nil {
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if !errors.Is(err, media.ErrNoTelephoneEvent) {
		return err
	}
	for _, d := range digits {
		req := c.request(sip.INFO)
		req.AppendHeader(sip.NewHeader("Content-Type", "application/dtmf-relay"))
		req.SetBody([]byte("Signal=" + string(d) + "\r\nDuration=160\r\n"))
		res, err := c.do(ctx, req)
		if err != nil {
			return fmt.Errorf("send dtmf info: %w", err)
		}
		if res.StatusCode >= 300 {
			return fmt.Errorf("dtmf info answered %d %s", res.StatusCode, res.Reason)
		}
		select { // a key's worth of time between keys, as with RFC 4733
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// onInfo takes DTMF sent as SIP INFO (application/dtmf-relay or
// application/dtmf) and hands it to the call like a telephone-event.
func (s *Server) onInfo(req *sip.Request, tx sip.ServerTransaction) {
	c := s.lookup(req)
	if c == nil {
		s.respond(tx, sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = strings.ToLower(strings.TrimSpace(strings.Split(h.Value(), ";")[0]))
	}
	digit, ok := rune(0), false
	switch ct {
	case "application/dtmf-relay":
		for _, line := range strings.Split(string(req.Body()), "\n") {
			k, v, found := strings.Cut(line, "=")
			if found && strings.EqualFold(strings.TrimSpace(k), "signal") {
				digit, ok = dtmfDigit(strings.TrimSpace(v))
			}
		}
	case "application/dtmf":
		digit, ok = dtmfDigit(strings.TrimSpace(string(req.Body())))
	default:
		res := sip.NewResponseFromRequest(req, 415, "Unsupported Media Type", nil)
		res.AppendHeader(sip.NewHeader("Accept", "application/dtmf-relay, application/dtmf"))
		s.respond(tx, res)
		return
	}
	if !ok {
		s.respond(tx, sip.NewResponseFromRequest(req, 400, "Bad Request (no DTMF signal)", nil))
		return
	}
	s.respond(tx, sip.NewResponseFromRequest(req, 200, "OK", nil))
	c.Media.InjectDTMF(digit)
}

// dtmfDigit reads a key: one of 0-9 * # A-D, or the event code 10 (*) / 11 (#).
func dtmfDigit(v string) (rune, bool) {
	v = strings.ToUpper(v)
	if len(v) == 1 && strings.ContainsRune(media.DTMFKeys, rune(v[0])) {
		return rune(v[0]), true
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 && n < len(media.DTMFKeys) {
		return rune(media.DTMFKeys[n]), true
	}
	return 0, false
}

// onNotify follows a REFER subscription: the body is a sipfrag status line
// of the call the peer placed (RFC 3515 §2.4.5).
func (s *Server) onNotify(req *sip.Request, tx sip.ServerTransaction) {
	c := s.lookup(req)
	if c == nil {
		s.respond(tx, sip.NewResponseFromRequest(req, 481, "Subscription Does Not Exist", nil))
		return
	}
	ev := req.GetHeader("Event")
	if ev == nil || !strings.HasPrefix(strings.ToLower(strings.TrimSpace(ev.Value())), "refer") {
		s.respond(tx, sip.NewResponseFromRequest(req, 489, "Bad Event", nil))
		return
	}
	s.respond(tx, sip.NewResponseFromRequest(req, 200, "OK", nil))
	// "SIP/2.0 200 OK"
	line, _, _ := strings.Cut(string(req.Body()), "\n")
	f := strings.Fields(line)
	if len(f) < 2 || !strings.HasPrefix(f[0], "SIP/") {
		return
	}
	code, err := strconv.Atoi(f[1])
	if err != nil {
		return
	}
	select {
	case c.notify <- code:
	default:
	}
}
