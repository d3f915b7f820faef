package voice

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/parley-voice/parley/internal/inbound"
	"github.com/parley-voice/parley/internal/pike"
	"github.com/parley-voice/parley/internal/sipauth"
	"github.com/parley-voice/parley/internal/store"
)

// inboundTrunk stores a trunk the way POST /sip-trunks does, with inbound
// addresses and an inbound_auth mode.
func (e *e2e) inboundTrunk(t *testing.T, name string, addrs []string, auth, user, password string) string {
	t.Helper()
	return e.trunk(t, name, "127.0.0.1:5060", user, password, map[string]any{"inbound_addresses": addrs, "inbound_auth": auth})
}

// calls returns the organization's call rows.
func (e *e2e) calls(t *testing.T) []store.Call {
	t.Helper()
	calls, _, err := e.db.ListCalls(context.Background(), e.org.ID, store.CallFilter{Page: store.Page{Limit: 100}})
	if err != nil {
		t.Fatal(err)
	}
	return calls
}

func (e *e2e) sippOK(t *testing.T, p *sippProc, what string) {
	t.Helper()
	if err := p.wait(20 * time.Second); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func (e *e2e) noCalls(t *testing.T, what string) {
	t.Helper()
	if calls := e.calls(t); len(calls) != 0 {
		t.Fatalf("%s: %d call rows, want none (first: %s from %s)", what, len(calls), calls[0].ID, deref(calls[0].CallerPhone))
	}
}

// Anonymous callers get 403 without a row or a provider touched; the
// trunk's own address is answered; a scanner gets nothing; an offer
// naming the metadata address gets 488. The server runs trunks-only.
func TestE2EInboundAdmission(t *testing.T) {
	requireSIPp(t)
	e := newE2E(t, e2eOptions{inbound: &inbound.Config{Policy: inbound.TrunksOnly}})
	aid, _ := e.assistant(t, map[string]any{"name": "Front desk", "first_message": "Hello from the front desk."})
	trunk := e.inboundTrunk(t, "Carrier", []string{"127.0.0.1", "10.20.0.0/16"}, "addresses", "", "")
	withTrunk := e.number(t, "+31201230101", &aid, &trunk)
	noTrunk := e.number(t, "+31201230102", &aid, nil)

	e.sippOK(t, startSIPpAt(t, "127.0.0.9", "uac_forbidden.xml", "-s", withTrunk.PhoneNumber, e.srv.UDPAddr().String()), "anonymous call to the trunk's number")
	e.sippOK(t, startSIPpAt(t, "127.0.0.9", "uac_forbidden.xml", "-s", noTrunk.PhoneNumber, e.srv.UDPAddr().String()), "anonymous call to a number without a trunk")
	e.sippOK(t, startSIPpAt(t, "127.0.0.9", "uac_forbidden.xml", "-s", "+31209999999", e.srv.UDPAddr().String()), "anonymous call to an unknown number")
	e.sippOK(t, startSIPpAt(t, "127.0.0.9", "uac_scanner.xml", "-s", withTrunk.PhoneNumber, e.srv.UDPAddr().String()), "scanner")
	e.sippOK(t, startSIPp(t, "uac_metadata_media.xml", "-s", withTrunk.PhoneNumber, e.srv.UDPAddr().String()), "metadata media address from the trunk")
	e.noCalls(t, "after the refused calls")
	if n := len(e.hooks.find(func(hookEvent) bool { return true })); n != 0 {
		t.Fatalf("%d webhooks sent for refused calls, want none", n)
	}
	if n := len(e.oa.Requests()) + len(e.el.Texts()); n != 0 {
		t.Fatalf("providers used %d times for refused calls", n)
	}
	st := e.gate.(*inbound.Gate).Stats()
	if st.Refused[inbound.ReasonAddress] != 1 || st.Refused[inbound.ReasonNoTrunk] != 1 || st.Refused[inbound.ReasonUnknownNumber] != 1 {
		t.Fatalf("admission stats %+v", st)
	}
	if es := e.srv.EdgeStats(); es.ScannersDropped != 1 || es.MediaAddrRefused != 1 {
		t.Fatalf("edge stats %+v", es)
	}

	// The trunk's own address is answered.
	e.sippOK(t, startSIPp(t, "uac_call_bye.xml", "-s", withTrunk.PhoneNumber, e.srv.UDPAddr().String()), "call from the trunk's address")
	id := e.onlyCall(t)
	row := e.waitFinal(t, id, 10*time.Second)
	if deref(row.CallerPhone) != "+15550003333" || row.StartedAt == nil {
		t.Fatalf("trunk call row: caller %s, started %v", deref(row.CallerPhone), row.StartedAt)
	}
}

// A trunk set to digest registers with its credentials and then calls in
// from the registered address; wrong credentials are refused.
func TestE2EDigestRegisteredTrunk(t *testing.T) {
	requireSIPp(t)
	// SIPp 3.6 answers only the first challenge and knows only MD5; the
	// SHA-256 challenge is exercised by TestE2EDigestNonceReplayAndExpiry.
	auth, err := sipauth.New(sipauth.Config{Key: []byte("0123456789abcdef0123456789abcdef"), Algorithms: []string{sipauth.MD5}})
	if err != nil {
		t.Fatal(err)
	}
	e := newE2E(t, e2eOptions{inbound: &inbound.Config{Policy: inbound.TrunksOnly, Auth: auth}})
	aid, _ := e.assistant(t, map[string]any{"name": "PBX desk"})
	trunk := e.inboundTrunk(t, "PBX", []string{}, "digest", "pbx", "s3cret-pw")
	num := e.number(t, "+31201230201", &aid, &trunk)

	e.sippOK(t, startSIPpAt(t, "127.0.0.5", "uac_register_wrong.xml", "-au", "pbx", "-ap", "guess", "-s", num.PhoneNumber, e.srv.UDPAddr().String()), "wrong password")
	e.sippOK(t, startSIPpAt(t, "127.0.0.5", "uac_register_wrong.xml", "-au", "admin", "-ap", "s3cret-pw", "-s", num.PhoneNumber, e.srv.UDPAddr().String()), "unknown user")
	e.sippOK(t, startSIPpAt(t, "127.0.0.5", "uac_register_wrong.xml", "-au", "pbx", "-ap", "s3cret-pw", "-s", "+31209999999", e.srv.UDPAddr().String()), "unknown number")
	e.noCalls(t, "after refused registrations")
	if st := e.gate.(*inbound.Gate).Stats(); st.Bindings != 0 || st.Refused[inbound.ReasonCredentials] != 3 {
		t.Fatalf("admission stats after refusals %+v", st)
	}

	e.sippOK(t, startSIPpAt(t, "127.0.0.4", "uac_register_call.xml", "-au", "pbx", "-ap", "s3cret-pw", "-s", num.PhoneNumber, e.srv.UDPAddr().String()), "registered trunk")
	id := e.onlyCall(t)
	if row := e.waitFinal(t, id, 10*time.Second); deref(row.CallerPhone) != "+15550004444" || row.StartedAt == nil {
		t.Fatalf("registered trunk's call row: %+v", row)
	}
	if st := e.gate.(*inbound.Gate).Stats(); st.Bindings != 1 || st.Registered != 1 {
		t.Fatalf("admission stats %+v", st)
	}

	// From an address that never registered, the INVITE itself carries
	// the credentials after a 401.
	e.sippOK(t, startSIPpAt(t, "127.0.0.7", "uac_digest_call.xml", "-au", "pbx", "-ap", "s3cret-pw", "-s", num.PhoneNumber, e.srv.UDPAddr().String()), "INVITE with digest credentials")
	if n := len(e.calls(t)); n != 2 {
		t.Fatalf("%d call rows after the authenticated INVITE, want 2", n)
	}
	if st := e.gate.(*inbound.Gate).Stats(); st.AdmittedDigest != 1 || st.Challenged < 2 {
		t.Fatalf("admission stats %+v", st)
	}
}

// regClient is a raw UDP REGISTER client: it builds its own digest
// answers, so the test can resend one (replay) or hold it (expiry).
type regClient struct {
	t      *testing.T
	conn   *net.UDPConn
	server *net.UDPAddr
	aor    string
	cseq   int
}

func (c *regClient) register(authorization string) *sip.Response {
	c.t.Helper()
	c.cseq++
	auth := ""
	if authorization != "" {
		auth = "Authorization: " + authorization + "\r\n"
	}
	local := c.conn.LocalAddr().String()
	msg := fmt.Sprintf("REGISTER sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bKreg%d%d\r\nMax-Forwards: 70\r\nFrom: <sip:%s@%s>;tag=rc1\r\nTo: <sip:%s@%s>\r\nCall-ID: regclient@test\r\nCSeq: %d REGISTER\r\nContact: <sip:pbx@%s>\r\nExpires: 120\r\n%sContent-Length: 0\r\n\r\n",
		c.server, local, c.cseq, time.Now().UnixNano(), c.aor, c.server.IP, c.aor, c.server.IP, c.cseq, local, auth)
	if _, err := c.conn.WriteToUDP([]byte(msg), c.server); err != nil {
		c.t.Fatal(err)
	}
	buf := make([]byte, 8192)
	for {
		c.conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, _, err := c.conn.ReadFromUDP(buf)
		if err != nil {
			c.t.Fatalf("no answer to REGISTER: %v", err)
		}
		m, err := sip.NewParser().ParseSIP(buf[:n])
		if err != nil {
			c.t.Fatal(err)
		}
		if r, ok := m.(*sip.Response); ok && r.StatusCode >= 200 {
			return r
		}
	}
}

// answer computes an Authorization for the first (SHA-256) challenge.
func (c *regClient) answer(res *sip.Response, password string, nc int) string {
	c.t.Helper()
	ch := res.GetHeader("WWW-Authenticate")
	if ch == nil {
		c.t.Fatalf("%d without a challenge", res.StatusCode)
	}
	params := map[string]string{}
	for _, kv := range strings.Split(strings.TrimPrefix(ch.Value(), "Digest "), ", ") {
		k, v, _ := strings.Cut(kv, "=")
		params[k] = strings.Trim(v, `"`)
	}
	uri := "sip:" + c.server.String()
	ncs := fmt.Sprintf("%08x", nc)
	resp, err := sipauth.Response(params["algorithm"], "pbx", params["realm"], password, "REGISTER", uri, params["nonce"], ncs, "0a4f113b", "auth")
	if err != nil {
		c.t.Fatal(err)
	}
	return fmt.Sprintf(`Digest username="pbx", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=%s, cnonce="0a4f113b", qop=auth, nc=%s`,
		params["realm"], params["nonce"], uri, resp, params["algorithm"], ncs)
}

// A captured Authorization sent again is refused (same nonce and nc); a
// nonce past its lifetime is answered 401 stale=true, and the fresh nonce
// works.
func TestE2EDigestNonceReplayAndExpiry(t *testing.T) {
	master := []byte("0123456789abcdef0123456789abcdef")
	auth, err := sipauth.New(sipauth.Config{Key: master, NonceTTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e := newE2E(t, e2eOptions{inbound: &inbound.Config{Policy: inbound.TrunksOnly, Auth: auth}})
	trunk := e.inboundTrunk(t, "PBX", []string{}, "digest", "pbx", "s3cret-pw")
	num := e.number(t, "+31201230301", nil, &trunk)
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 6)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := &regClient{t: t, conn: conn, server: net.UDPAddrFromAddrPort(e.srv.UDPAddr()), aor: num.PhoneNumber}

	ch := c.register("")
	if ch.StatusCode != 401 || len(ch.GetHeaders("WWW-Authenticate")) != 2 {
		t.Fatalf("first REGISTER: %d %v", ch.StatusCode, ch.GetHeaders("WWW-Authenticate"))
	}
	good := c.answer(ch, "s3cret-pw", 1)
	if r := c.register(good); r.StatusCode != 200 {
		t.Fatalf("valid credentials: %d", r.StatusCode)
	}
	if r := c.register(good); r.StatusCode != 403 || r.GetHeader("WWW-Authenticate") != nil {
		t.Fatalf("replayed Authorization: %d, want a bare 403", r.StatusCode)
	}
	if r := c.register(c.answer(ch, "s3cret-pw", 2)); r.StatusCode != 200 {
		t.Fatalf("next nonce count: %d", r.StatusCode)
	}
	time.Sleep(2100 * time.Millisecond)
	stale := c.register(c.answer(ch, "s3cret-pw", 3))
	if stale.StatusCode != 401 || !strings.Contains(stale.GetHeader("WWW-Authenticate").Value(), "stale=true") {
		t.Fatalf("expired nonce: %d %v, want 401 stale=true", stale.StatusCode, stale.GetHeader("WWW-Authenticate"))
	}
	if r := c.register(c.answer(stale, "s3cret-pw", 1)); r.StatusCode != 200 {
		t.Fatalf("fresh nonce after stale: %d", r.StatusCode)
	}
}

// A flood of INVITEs from one source is banned after the limit (16 per
// 2 s), while the trunk's calls from its own address still connect.
func TestE2EFloodBanned(t *testing.T) {
	requireSIPp(t)
	e := newE2E(t, e2eOptions{
		inbound: &inbound.Config{Policy: inbound.TrunksOnly},
		limiter: &pike.Config{Limit: 16, Window: 2 * time.Second, Ban: 300 * time.Second},
	})
	aid, _ := e.assistant(t, map[string]any{"name": "Front desk"})
	trunk := e.inboundTrunk(t, "Carrier", []string{"127.0.0.1"}, "addresses", "", "")
	num := e.number(t, "+31201230401", &aid, &trunk)

	flood := startSIPpAt(t, "127.0.0.2", "uac_forbidden.xml", "-s", num.PhoneNumber, "-m", "100", "-r", "50", "-l", "100", "-recv_timeout", "1000", e.srv.UDPAddr().String())
	time.Sleep(500 * time.Millisecond) // the ban is in place by now
	legit := startSIPp(t, "uac_call_bye.xml", "-s", num.PhoneNumber, e.srv.UDPAddr().String())
	e.sippOK(t, legit, "the trunk's call during the flood")
	// Unanswered calls fail after a second (-recv_timeout): SIPp exits
	// with an error once the 100 calls are over.
	switch err := flood.wait(15 * time.Second); {
	case err == nil:
		t.Fatal("every flood call passed: nothing was dropped")
	case strings.Contains(err.Error(), "still running"):
		t.Fatal(err)
	}
	id := e.onlyCall(t)
	if row := e.waitFinal(t, id, 10*time.Second); row.StartedAt == nil || deref(row.CallerPhone) != "+15550003333" {
		t.Fatalf("trunk call row %+v", row)
	}
	st := e.gate.(*inbound.Gate).Stats()
	es := e.srv.EdgeStats()
	t.Logf("flood: edge %+v, admission refused %v", es, st.Refused)
	if es.BansIssued != 1 || es.RateLimitedDropped < 100-16 {
		t.Fatalf("edge stats %+v: want 1 ban and at least 84 dropped", es)
	}
	if st.Refused[inbound.ReasonAddress] != 16 {
		t.Fatalf("%d flood INVITEs reached the gate, want exactly the 16 under the limit", st.Refused[inbound.ReasonAddress])
	}
}
