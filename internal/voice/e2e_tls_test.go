package voice

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/certfile/certtest"
	"github.com/parley-voice/parley/internal/store"
)

// TestE2EOutboundTLSTrunkRefused dials through a trunk with transport tls
// whose certificate no trusted root issued: the call row ends failed /
// unreachable with an error naming the TLS failure and what to configure,
// and the trunk never receives a byte of SIP.
func TestE2EOutboundTLSTrunkRefused(t *testing.T) {
	ca := certtest.NewCA(t, "unknown CA")
	c, k := ca.Issue(t, "trunk", "localhost", "127.0.0.1")
	trunkCert, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{trunkCert}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var received atomic.Int64
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func(conn net.Conn) {
				defer conn.Close()
				buf := make([]byte, 4096)
				for {
					n, err := conn.Read(buf)
					received.Add(int64(n))
					if err != nil {
						return
					}
				}
			}(conn)
		}
	}()

	own := certtest.NewCA(t, "our CA")
	oc, ok := own.Issue(t, "parley", "127.0.0.1")
	ourCert, err := tls.X509KeyPair(oc, ok)
	if err != nil {
		t.Fatal(err)
	}
	e := newE2E(t, e2eOptions{sipTLS: &ourCert})
	ctx := context.Background()
	trunk := e.trunkOver(t, "tls", "TLS trunk", ln.Addr().String(), "", "")
	num := e.number(t, "+31201230041", nil, &trunk)
	aid, doc := e.assistant(t, map[string]any{"name": "Dialer"})
	id, err := e.engine.Dial(ctx, call.Dial{OrgID: e.org.ID, Destination: "+31612345678", NumberID: num.ID, AssistantID: aid, Assistant: doc})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	var row *store.Call
	for start := time.Now(); time.Since(start) < 5*time.Second; time.Sleep(20 * time.Millisecond) {
		if r, err := e.db.GetCall(ctx, e.org.ID, id); err == nil && r.Status.Final() {
			row = r
			break
		}
	}
	if row == nil {
		t.Fatal("call not over 5 s after dialling a trunk whose certificate is refused")
	}
	msg := deref(row.Error)
	if row.Status != call.StatusFailed || deref(row.EndReason) != string(call.EndUnreachable) ||
		!strings.Contains(msg, "certificate") || !strings.Contains(msg, "PARLEY_SIP_TLS_CA") {
		t.Fatalf("call ended as %s / %s (%q), want failed / unreachable naming the certificate and PARLEY_SIP_TLS_CA", row.Status, deref(row.EndReason), msg)
	}
	t.Logf("error recorded: %s", msg)
	if n := received.Load(); n != 0 {
		t.Errorf("the trunk received %d bytes of application data", n)
	}
}
