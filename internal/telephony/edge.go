package telephony

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/parley-voice/parley/internal/netguard"
	"github.com/parley-voice/parley/internal/pike"
)

// The edge drops requests before anything answers them: from scanners
// (known User-Agents of SIP scanning tools, as Kamailio's sample
// configuration does) and from sources over the request rate limit. It
// runs in the UDP guard, before sipgo parses the datagram into a
// transaction, and again in the INVITE, REGISTER and OPTIONS handlers for
// requests that came over TCP.

// SourceLimiter counts requests per source address (package pike).
type SourceLimiter interface {
	Check(ip netip.Addr) pike.Verdict
	Banned(ip netip.Addr) bool
}

// TrustedSources knows sources admitted as trunks (package inbound); they
// are exempt from the request limit.
type TrustedSources interface {
	Trusted(ip netip.Addr) bool
}

// scannerAgents are substrings (lower case) of the User-Agent of SIP
// scanning and toll-fraud tools.
var scannerAgents = [...]string{"friendly-scanner", "sipvicious", "sipcli", "vaxsipuseragent", "pplsip", "sip-scan", "sipscan", "iwar", "sundayddr"}

// isScanner reports whether a User-Agent belongs to a scanner.
func isScanner(ua string) bool {
	ua = strings.ToLower(ua)
	for _, s := range scannerAgents {
		if strings.Contains(ua, s) {
			return true
		}
	}
	return false
}

// EdgeStats are the counters of the SIP edge since the server started.
type EdgeStats struct {
	ScannersDropped    uint64 `json:"scanners_dropped"`
	RateLimitedDropped uint64 `json:"rate_limited_dropped"`
	BansIssued         uint64 `json:"bans_issued"`
	MediaAddrRefused   uint64 `json:"media_address_refused"`
}

type edgeCounters struct {
	scanners, limited, bans, mediaAddr atomic.Uint64
}

// EdgeStats returns the edge counters.
func (s *Server) EdgeStats() EdgeStats {
	return EdgeStats{
		ScannersDropped:    s.edge.scanners.Load(),
		RateLimitedDropped: s.edge.limited.Load(),
		BansIssued:         s.edge.bans.Load(),
		MediaAddrRefused:   s.edge.mediaAddr.Load(),
	}
}

// rateLimited are the methods counted against a source's limit; other
// requests (ACK, BYE, CANCEL in a live dialog) are only refused while the
// source is banned.
func rateLimited(m sip.RequestMethod) bool {
	return m == sip.INVITE || m == sip.REGISTER || m == sip.OPTIONS
}

// dropRequest reports whether a request from addr is dropped without an
// answer.
func (s *Server) dropRequest(req *sip.Request, addr string) bool {
	if ua := req.GetHeader("user-agent"); ua != nil && isScanner(ua.Value()) {
		s.edge.scanners.Add(1)
		s.log.Debug("sip request from a scanner dropped", "source", addr, "user_agent", ua.Value())
		return true
	}
	if s.cfg.Limiter == nil {
		return false
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return false
	}
	ip := ap.Addr()
	if s.cfg.Trusted != nil && s.cfg.Trusted.Trusted(ip) {
		return false
	}
	if !rateLimited(req.Method) {
		if s.cfg.Limiter.Banned(ip) {
			s.edge.limited.Add(1)
			return true
		}
		return false
	}
	switch s.cfg.Limiter.Check(ip) {
	case pike.Banned:
		s.edge.bans.Add(1)
		s.edge.limited.Add(1)
		s.log.Warn("sip source banned: over the request rate limit", "source", ip.String(), "method", string(req.Method), "bans_issued", s.edge.bans.Load(), "dropped", s.edge.limited.Load())
		return true
	case pike.Refused:
		s.edge.limited.Add(1)
		return true
	}
	return false
}

// dropStream applies dropRequest to requests that did not pass the UDP
// guard (TCP).
func (s *Server) dropStream(req *sip.Request) bool {
	if strings.EqualFold(req.Transport(), "udp") {
		return false
	}
	return s.dropRequest(req, req.Source())
}

// checkMediaAddr refuses an offer whose address Parley must not send RTP
// to: loopback (unless LoopbackMedia), link-local, cloud metadata,
// unspecified, multicast and reserved ranges. Private addresses are
// allowed: trunks on a private network use them.
func (s *Server) checkMediaAddr(ap netip.AddrPort) *Reject {
	err := s.mediaGuard.Check(ap)
	be, ok := err.(*netguard.BlockedError)
	if !ok {
		return nil
	}
	switch {
	case be.Reason == netguard.ReasonPrivate:
		return nil
	case be.Reason == netguard.ReasonLoopback && s.cfg.LoopbackMedia:
		return nil
	}
	s.edge.mediaAddr.Add(1)
	return &Reject{Code: 488, Reason: "Not Acceptable Here", Warning: fmt.Sprintf(`305 parley "media address %s is %s"`, be.Addr, be.Reason)}
}

// logEdge logs the edge counters every interval while they change, until
// ctx ends.
func (s *Server) logEdge(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var last EdgeStats
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := s.EdgeStats()
		if st == last {
			continue
		}
		last = st
		s.log.Info("sip edge counters", slog.Uint64("scanners_dropped", st.ScannersDropped), slog.Uint64("rate_limited_dropped", st.RateLimitedDropped),
			slog.Uint64("bans_issued", st.BansIssued), slog.Uint64("media_address_refused", st.MediaAddrRefused))
	}
}
