package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/inbound"
)

// Who may call in defaults by where SIP listens: open with loopback media
// on a loopback address (development), trunks-only without it elsewhere.
func TestSIPInboundSettings(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		env          []string
		wantPolicy   inbound.Policy
		wantLoopback bool
	}{
		{nil, inbound.Open, true},
		{[]string{"PARLEY_SIP_ADDR=0.0.0.0:5060", "PARLEY_SIP_PUBLIC_ADDR=203.0.113.9"}, inbound.TrunksOnly, false},
		{[]string{"PARLEY_SIP_ADDR=203.0.113.9:5060"}, inbound.TrunksOnly, false},
		{[]string{"PARLEY_SIP_INBOUND=trunks-only"}, inbound.TrunksOnly, true},
		{[]string{"PARLEY_SIP_ADDR=0.0.0.0:5060", "PARLEY_SIP_INBOUND=open", "PARLEY_SIP_LOOPBACK_MEDIA=true"}, inbound.Open, true},
		{[]string{"PARLEY_SIP_LOOPBACK_MEDIA=false"}, inbound.Open, false},
	}
	for _, tt := range tests {
		c, _, err := loadConfig("serve", nil, append([]string{"PARLEY_DATA_DIR=" + dir}, tt.env...), io.Discard, nil)
		if err != nil {
			t.Fatalf("%v: %v", tt.env, err)
		}
		if c.SIPInbound != tt.wantPolicy || c.SIPLoopbackMedia != tt.wantLoopback {
			t.Errorf("%v: policy %s, loopback media %v; want %s, %v", tt.env, c.SIPInbound, c.SIPLoopbackMedia, tt.wantPolicy, tt.wantLoopback)
		}
	}
	c, _, err := loadConfig("serve", nil, []string{"PARLEY_DATA_DIR=" + dir}, io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.SIPRateLimit != 16 || c.SIPRateWindow != 2*time.Second || c.SIPBan != 300*time.Second || c.SIPNonceTTL != 300*time.Second {
		t.Errorf("defaults: limit %d per %s, ban %s, nonce %s", c.SIPRateLimit, c.SIPRateWindow, c.SIPBan, c.SIPNonceTTL)
	}
	for _, bad := range []string{"PARLEY_SIP_INBOUND=closed", "PARLEY_SIP_LOOPBACK_MEDIA=maybe", "PARLEY_SIP_RATE_LIMIT=-1", "PARLEY_SIP_BAN=0s", "PARLEY_SIP_NONCE_TTL=1s"} {
		_, _, err := loadConfig("serve", nil, []string{"PARLEY_DATA_DIR=" + dir, bad}, io.Discard, nil)
		name, _, _ := strings.Cut(bad, "=")
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %v, want one naming %s", bad, err, name)
		}
	}
}
