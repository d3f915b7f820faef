package netguard

import (
	"errors"
	"strings"
	"testing"
)

func TestURLCheck(t *testing.T) {
	prod, dev := NewURLCheck(false), NewURLCheck(true)
	for _, tc := range []struct {
		url       string
		prod, dev string // "" accepted, else a substring of the refusal
		norm      string // expected normalisation when accepted (prod, else dev)
	}{
		{url: "https://hooks.example.com/parley", norm: "https://hooks.example.com/parley"},
		{url: "HTTPS://Hooks.Example.COM:443/p?q=1", norm: "https://hooks.example.com/p?q=1"},
		{url: "https://93.184.216.34:8443/x", norm: "https://93.184.216.34:8443/x"},
		{url: "https://[2606:2800:220:1:248:1893:25c8:1946]/", norm: "https://[2606:2800:220:1:248:1893:25c8:1946]/"},
		{url: "https://[2002:5db8:d822::1]/", norm: "https://[2002:5db8:d822::1]/"}, // 6to4 of a public v4
		{url: "http://hooks.example.com/", prod: "must use https", norm: "http://hooks.example.com/"},
		{url: "ftp://hooks.example.com/", prod: "must use https", dev: "must use https"},
		{url: "hooks.example.com/x", prod: "absolute URL", dev: "absolute URL"},
		{url: "https://user:pw@hooks.example.com/", prod: "credentials", dev: "credentials"},
		{url: "https://hooks.example.com/#frag", prod: "fragment", dev: "fragment"},
		{url: "https://hooks.example.com:0/", prod: "invalid port", dev: "invalid port"},
		{url: "https://hooks.example.com:99999/", prod: "invalid port", dev: "invalid port"},

		// Every spelling of loopback: refused in production, admitted in development.
		{url: "https://127.0.0.1/", prod: "127.0.0.1 is a loopback address", norm: "https://127.0.0.1/"},
		{url: "https://127.1/", prod: "127.1 is 127.0.0.1, a loopback", norm: "https://127.1/"},
		{url: "https://0177.1/", prod: "0177.1 is 127.0.0.1, a loopback"},
		{url: "https://0177.0.0.1/", prod: "loopback"},
		{url: "https://2130706433/", prod: "2130706433 is 127.0.0.1, a loopback"},
		{url: "https://0x7f000001/", prod: "0x7f000001 is 127.0.0.1, a loopback"},
		{url: "https://0x7f.1/", prod: "loopback"},
		{url: "https://127.0.0.1./", prod: "loopback"},
		{url: "https://[::1]/", prod: "::1 is a loopback"},
		{url: "https://[::ffff:127.0.0.1]/", prod: "loopback"},
		{url: "https://[::ffff:7f00:1]/", prod: "loopback"},
		{url: "https://[::127.0.0.1]/", prod: "loopback"},
		{url: "https://localhost:8080/", prod: "loopback name"},
		{url: "https://api.LOCALHOST/", prod: "loopback name"},

		// Private: refused in production, admitted in development.
		{url: "https://10.1.2.3/", prod: "10.1.2.3 is a private address"},
		{url: "https://012.1.2.3/", prod: "10.1.2.3, a private"},
		{url: "https://192.168.1.1/", prod: "private"},
		{url: "https://0xc0a80101/", prod: "private"},
		{url: "https://172.16.0.1/", prod: "private"},
		{url: "https://[fd00::1]/", prod: "private"},
		{url: "https://intranet/", prod: "can only be internal"},
		{url: "https://crm.internal/", prod: "can only be internal"},
		{url: "https://printer.local/", prod: "can only be internal"},

		// Refused in development too.
		{url: "https://169.254.169.254/latest/meta-data", prod: "cloud metadata", dev: "cloud metadata"},
		{url: "https://0xa9fea9fe/", prod: "cloud metadata", dev: "cloud metadata"},
		{url: "https://[::ffff:169.254.169.254]/", prod: "cloud metadata", dev: "cloud metadata"},
		{url: "https://[fd00:ec2::254]/", prod: "cloud metadata", dev: "cloud metadata"},
		{url: "https://100.100.100.200/", prod: "cloud metadata", dev: "cloud metadata"},
		{url: "https://169.254.1.1/", prod: "link-local", dev: "link-local"},
		{url: "https://[fe80::1%25eth0]/", prod: "link-local", dev: "link-local"},
		{url: "https://100.64.0.1/", prod: "private", dev: "private"}, // CGNAT: not in the development prefixes
		{url: "https://0.0.0.0/", prod: "unspecified", dev: "unspecified"},
		{url: "https://0/", prod: "unspecified", dev: "unspecified"},
		{url: "https://[::]/", prod: "unspecified", dev: "unspecified"},
		{url: "https://224.0.0.1/", prod: "multicast", dev: "multicast"},
		{url: "https://255.255.255.255/", prod: "reserved", dev: "reserved"},
		{url: "https://[64:ff9b::7f00:1]/", prod: "reserved", dev: "reserved"},    // NAT64 of 127.0.0.1
		{url: "https://[64:ff9b::a9fe:a9fe]/", prod: "reserved", dev: "reserved"}, // NAT64 of the metadata address
		{url: "https://[2002:7f00:1::]/", prod: "reserved", dev: "reserved"},      // 6to4 of 127.0.0.1
		{url: "https://[2001:db8::1]/", prod: "reserved", dev: "reserved"},
	} {
		for _, side := range []struct {
			name string
			c    *URLCheck
			want string
		}{{"production", prod, tc.prod}, {"development", dev, tc.dev}} {
			got, err := side.c.Check(tc.url)
			switch {
			case side.want == "" && err != nil:
				t.Errorf("%s: %s refused: %v", side.name, tc.url, err)
			case side.want != "" && err == nil:
				t.Errorf("%s: %s accepted as %s, want refusal containing %q", side.name, tc.url, got, side.want)
			case side.want != "" && (!strings.Contains(err.Error(), side.want) || !errors.Is(err, ErrURL)):
				t.Errorf("%s: %s: error %q (ErrURL %v), want it to contain %q", side.name, tc.url, err, errors.Is(err, ErrURL), side.want)
			case side.want == "" && tc.norm != "" && got != tc.norm && (side.name == "production" || tc.prod != ""):
				t.Errorf("%s: %s normalised to %s, want %s", side.name, tc.url, got, tc.norm)
			}
		}
	}
}
