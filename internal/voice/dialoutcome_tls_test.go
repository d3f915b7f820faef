package voice

import (
	"crypto/x509"
	"fmt"
	"strings"
	"testing"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/telephony"
)

// TestDialOutcomeTLS: a refused trunk certificate and a missing TLS
// listener end the call with a reason and a message that says what to fix.
func TestDialOutcomeTLS(t *testing.T) {
	for _, tc := range []struct {
		err        error
		reason     call.EndReason
		wantSubstr string
	}{
		{&telephony.TLSError{Host: "sip.example.com", Err: fmt.Errorf("send: %w", x509.UnknownAuthorityError{})}, call.EndUnreachable, "PARLEY_SIP_TLS_CA"},
		{fmt.Errorf("dial: %w", telephony.ErrNoTLSListener), call.EndError, "PARLEY_SIP_TLS_ADDR"},
	} {
		reason, msg := dialOutcome(tc.err)
		if reason != tc.reason || !strings.Contains(msg, tc.wantSubstr) {
			t.Errorf("dialOutcome(%v) = %s, %q; want %s and a message naming %s", tc.err, reason, msg, tc.reason, tc.wantSubstr)
		}
	}
}
