package httpapi

import (
	"context"
	"encoding/json"
	"net"
	"regexp"
	"strconv"
	"strings"

	"github.com/parley-voice/parley/internal/inbound"
	"github.com/parley-voice/parley/internal/secret"
	"github.com/parley-voice/parley/internal/sipacl"
	"github.com/parley-voice/parley/internal/store"
)

// SIP trunks come in three generations (spec §8.15): the docs' host/port/
// username/password, SDK-OLD's outbound_address and auth_*, and the current
// provider/address/transport/auth_*. All are accepted and stored as the current
// shape; the password is sealed and never returned.

type trunkBody struct {
	Name             string   `json:"name"`
	Provider         *string  `json:"provider"`
	Address          string   `json:"address"`
	Transport        string   `json:"transport"`
	MediaEncryption  string   `json:"media_encryption"`
	AuthUsername     *string  `json:"auth_username"`
	InboundAddresses []string `json:"inbound_addresses"`
	InboundAuth      string   `json:"inbound_auth"`
	OutboundNumber   *string  `json:"outbound_number"`
	// MaxConcurrentCalls is the trunk's channel limit (Parley extension):
	// outbound calls over it are not started. Nil: no limit.
	MaxConcurrentCalls *int `json:"max_concurrent_calls"`
	IsActive           bool `json:"is_active"`
}

func (s *Server) trunks() docResource {
	return docResource{kind: store.SIPTrunks, one: "trunk", many: "trunks", build: s.buildTrunk, render: trunkObject}
}

func (s *Server) buildTrunk(_ context.Context, org string, merged, _ object, _ *store.Doc) (*store.Doc, error) {
	fs := newFields(merged)
	fs.alias("username", "auth_username")
	fs.alias("password", "auth_password")
	fs.alias("outbound_address", "address")
	b := trunkBody{IsActive: true, Transport: "udp", MediaEncryption: "none", InboundAddresses: []string{}, InboundAuth: inbound.AuthAddresses}
	b.Name, _ = fs.str("name", true)
	b.Provider, _ = fs.nullableStr("provider")
	addr, hasAddr := fs.str("address", false)
	host, hasHost := fs.str("host", false)
	port, hasPort := fs.integer("port")
	switch {
	case hasAddr && hasHost:
		fs.f.Invalidf("host", "and address both name the trunk's address; send one of them")
	case hasHost:
		addr = host
		if hasPort {
			if port < 1 || port > 65535 {
				fs.f.Invalidf("port", "must be from 1 to 65535 (got %d)", port)
			}
			addr = net.JoinHostPort(strings.Trim(host, "[]"), strconv.Itoa(port))
		}
	case hasPort && hasAddr:
		if _, _, err := net.SplitHostPort(addr); err == nil {
			fs.f.Invalidf("port", "conflicts with the port in address %q; send one of them", addr)
		} else if port < 1 || port > 65535 {
			fs.f.Invalidf("port", "must be from 1 to 65535 (got %d)", port)
		} else {
			addr = net.JoinHostPort(strings.Trim(addr, "[]"), strconv.Itoa(port))
		}
	case !hasAddr:
		fs.f.Missing("address")
	}
	if addr != "" {
		norm, ok := normalizeSIPAddress(addr)
		if !ok {
			fs.f.Invalidf(fieldForAddress(hasHost), "must be a host name or IP address with an optional :port, such as sip.example.com:5060 (got %q)", addr)
		}
		b.Address = norm
	}
	if t, ok := fs.str("transport", false); ok {
		t = strings.ToLower(t)
		if t != "udp" && t != "tcp" && t != "tls" {
			fs.f.Invalidf("transport", "must be one of udp, tcp, tls (got %q)", t)
		}
		b.Transport = t
	}
	if m, ok := fs.str("media_encryption", false); ok {
		m = strings.ToLower(m)
		if m != "none" && m != "srtp" {
			fs.f.Invalidf("media_encryption", "must be one of none, srtp (got %q)", m)
		}
		b.MediaEncryption = m
	}
	b.AuthUsername, _ = fs.nullableStr("auth_username")
	password, _ := fs.nullableStr("auth_password")
	if raw, ok := fs.raw("inbound_addresses"); ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &b.InboundAddresses); err != nil {
			fs.f.Invalidf("inbound_addresses", "must be an array of strings")
		}
		for i, a := range b.InboundAddresses {
			e, err := sipacl.ParseEntry(a)
			if err != nil {
				fs.f.Invalidf("inbound_addresses["+strconv.Itoa(i)+"]", "must be an IP address, CIDR prefix or host name: %v", err)
				continue
			}
			b.InboundAddresses[i] = e.String()
		}
	}
	if v, ok := fs.str("inbound_auth", false); ok {
		if v != inbound.AuthAddresses && v != inbound.AuthDigest {
			fs.f.Invalidf("inbound_auth", "must be one of %s, %s (got %q)", inbound.AuthAddresses, inbound.AuthDigest, v)
		}
		b.InboundAuth = v
	}
	if b.InboundAuth == inbound.AuthDigest {
		if b.AuthUsername == nil || *b.AuthUsername == "" {
			fs.f.Invalidf("auth_username", "is required when inbound_auth is digest: the trunk authenticates with it")
		}
		if password == nil || *password == "" {
			fs.f.Invalidf("auth_password", "is required when inbound_auth is digest: the trunk authenticates with it")
		}
	}
	b.OutboundNumber, _ = fs.nullableStr("outbound_number")
	if b.OutboundNumber != nil && !validE164(*b.OutboundNumber) {
		fs.f.Invalidf("outbound_number", "must be an E.164 number such as +31201234567")
	}
	if raw, ok := fs.raw("max_concurrent_calls"); ok && !isNull(raw) {
		if n, ok := fs.integer("max_concurrent_calls"); ok {
			if n < 1 || n > 10000 {
				fs.f.Invalidf("max_concurrent_calls", "must be from 1 to 10000, or null for no limit (got %d)", n)
			}
			b.MaxConcurrentCalls = &n
		}
	}
	if v, ok := fs.boolean("is_active"); ok {
		b.IsActive = v
	}
	fs.unknown()
	if err := fs.err(); err != nil {
		return nil, err
	}
	body, err := json.Marshal(b)
	if err != nil {
		return nil, err
	}
	d := &store.Doc{ID: store.NewID(), Name: b.Name, Active: b.IsActive, Body: body}
	if password != nil && *password != "" {
		sealed := s.keys.Seal([]byte(*password), secret.Binding{OrgID: org, Table: "sip_trunks", Field: "auth_password", RowID: d.ID})
		d.Secret = &sealed
	}
	return d, nil
}

func fieldForAddress(fromHost bool) string {
	if fromHost {
		return "host"
	}
	return "address"
}

var hostnameRE = regexp.MustCompile(`^(?i:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.(?i:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?))*\.?$`)

// normalizeSIPAddress accepts host, host:port, [v6]:port, optionally prefixed
// with sip: or sips:, and returns it lower-cased without the prefix.
func normalizeSIPAddress(a string) (string, bool) {
	a = strings.TrimSpace(strings.ToLower(a))
	a = strings.TrimPrefix(strings.TrimPrefix(a, "sips:"), "sip:")
	if a == "" || len(a) > 253 || strings.ContainsAny(a, "/@ ") {
		return "", false
	}
	host := a
	if h, p, err := net.SplitHostPort(a); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return "", false
		}
		host = h
	}
	host = strings.Trim(host, "[]")
	if net.ParseIP(host) != nil || hostnameRE.MatchString(host) {
		return a, true
	}
	return "", false
}
