package telephony

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Registrar accepts registrations of trunks that register to Parley
// (RFC 3261 §10). It returns the granted expiry, or a *Reject (401 with a
// challenge, 403, ...); any other error answers 503.
type Registrar interface {
	Register(ctx context.Context, r Registration) (time.Duration, error)
}

// Registration is a REGISTER request.
type Registration struct {
	// AOR is the user part of the To header: the number (or name) being
	// registered.
	AOR string
	// Source is the address the request came from, Transport its transport.
	Source, Transport string
	// RequestURI and Authorization carry the digest credentials.
	RequestURI, Authorization string
	// Expires is the requested lifetime (Expires header or the Contact's
	// expires parameter; 3600 s when neither is given); 0 removes the
	// registration.
	Expires time.Duration
}

// defaultRegisterExpiry is what a REGISTER without Expires asks for (RFC
// 3261 §10.2.1.1 suggests one hour).
const defaultRegisterExpiry = time.Hour

func (s *Server) onRegister(req *sip.Request, tx sip.ServerTransaction) {
	if s.dropStream(req) {
		return
	}
	if s.draining.Load() {
		s.reject(tx, req, &Reject{Code: 503, Reason: "Service Unavailable", RetryAfter: s.cfg.RetryAfter})
		return
	}
	r := Registration{Source: req.Source(), Transport: strings.ToLower(req.Transport()), RequestURI: req.Recipient.String(), Expires: defaultRegisterExpiry}
	if to := req.To(); to != nil {
		r.AOR = to.Address.User
	}
	if h := req.GetHeader("authorization"); h != nil {
		r.Authorization = h.Value()
	}
	contact := req.Contact()
	if e := req.GetHeader("expires"); e != nil {
		n, err := strconv.ParseUint(strings.TrimSpace(e.Value()), 10, 32)
		if err != nil {
			s.reject(tx, req, &Reject{Code: 400, Reason: "Bad Request (Expires is not a number of seconds)"})
			return
		}
		r.Expires = time.Duration(n) * time.Second
	}
	if contact != nil {
		if v, ok := contact.Params.Get("expires"); ok {
			if n, err := strconv.ParseUint(v, 10, 32); err == nil {
				r.Expires = time.Duration(n) * time.Second
			}
		}
	}
	if contact == nil {
		// A query for the current bindings (RFC 3261 §10.2.3): answered
		// like a registration so credentials are still checked, without
		// changing anything.
		r.Expires = -1
	}
	ctx, stop := context.WithTimeout(s.callsCtx, routeTimeout)
	granted, err := s.cfg.Registrar.Register(ctx, r)
	stop()
	if err != nil {
		var rj *Reject
		if !errors.As(err, &rj) {
			s.log.Error("sip register failed", "source", r.Source, "error", err)
			rj = &Reject{Code: 503, Reason: "Service Unavailable", RetryAfter: s.cfg.RetryAfter}
		}
		s.reject(tx, req, rj)
		return
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	if contact != nil && granted > 0 {
		c := contact.Clone()
		c.Params = sip.NewParams()
		c.Params.Add("expires", strconv.Itoa(int(granted.Seconds())))
		res.AppendHeader(c)
	}
	if granted >= 0 {
		res.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(int(granted.Seconds()))))
	}
	res.AppendHeader(sip.NewHeader("Date", time.Now().UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT")))
	s.respond(tx, res)
}
