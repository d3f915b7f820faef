// Package redact keeps API keys out of the text a provider adapter passes
// on: error messages built from what a server or the network said, which
// may echo the key back.
package redact

import "strings"

// Key returns s with every occurrence of key replaced by "[redacted]", or s
// unchanged when key is empty.
func Key(s, key string) string {
	if key == "" {
		return s
	}
	return strings.ReplaceAll(s, key, "[redacted]")
}
