// Package wsurl turns the base URL an adapter is configured with into the
// origin of the vendor's websocket endpoint.
package wsurl

import (
	"fmt"
	"net/url"
)

// Adapt gives u, parsed from base, a websocket scheme (http becomes ws and
// https wss; ws and wss stay) and checks that it names a host. Its errors
// quote base. url.Parse has already lowercased the scheme.
func Adapt(u *url.URL, base string) error {
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return fmt.Errorf("base URL %q: scheme must be ws, wss, http or https", base)
	}
	if u.Host == "" {
		return fmt.Errorf("base URL %q has no host", base)
	}
	return nil
}
