package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/secret"
	"github.com/parley-voice/parley/internal/store"
)

// MCP servers (spec §7.16). Header values are sealed and write-only; the stored
// body keeps only their names.

type mcpBody struct {
	Name           string   `json:"name"`
	URL            string   `json:"url"`
	Transport      string   `json:"transport"`
	HeaderNames    []string `json:"header_names"`
	TimeoutSeconds int      `json:"timeout_seconds"`
}

func (s *Server) mcpServers() docResource {
	return docResource{kind: store.MCPServers, one: "mcp_server", many: "mcp_servers", build: s.buildMCP}
}

var headerNameRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")

var reservedHeaders = []string{"host", "content-length", "content-type", "transfer-encoding", "connection", "accept", "mcp-session-id", "mcp-protocol-version"}

func (s *Server) buildMCP(_ context.Context, org string, merged, sent object, cur *store.Doc) (*store.Doc, error) {
	fs := newFields(merged, "header_names")
	b := mcpBody{Transport: "streamable_http", TimeoutSeconds: 20, HeaderNames: []string{}}
	b.Name, _ = fs.str("name", true)
	if len(b.Name) > 100 {
		fs.f.Invalidf("name", "must be at most 100 characters")
	}
	rawURL, _ := fs.str("url", true)
	if rawURL != "" {
		norm, err := s.urls.Check(rawURL)
		if err != nil {
			fs.f.Invalidf("url", "%v", err)
		}
		b.URL = norm
	}
	if t, ok := fs.str("transport", false); ok {
		if t != "streamable_http" && t != "sse" {
			fs.f.Invalidf("transport", "must be streamable_http or sse (got %q)", t)
		}
		b.Transport = t
	}
	if n, ok := fs.integer("timeout_seconds"); ok {
		if n < 5 || n > 60 {
			fs.f.Invalidf("timeout_seconds", "must be from 5 to 60 (got %d)", n)
		}
		b.TimeoutSeconds = n
	}
	var headers map[string]string
	_, headersSent := sent["headers"]
	if raw, ok := fs.raw("headers"); ok && headersSent {
		if isNull(raw) {
			headers = map[string]string{}
		} else if err := json.Unmarshal(raw, &headers); err != nil {
			fs.f.Invalidf("headers", "must be an object of header names to string values")
		}
		checkHeaders(&fs.f, headers)
	}
	if cur != nil && !headersSent {
		var old mcpBody
		if err := json.Unmarshal(cur.Body, &old); err != nil {
			return nil, fmt.Errorf("decode stored MCP server: %w", err)
		}
		b.HeaderNames = old.HeaderNames
		if hostOf(old.URL) != hostOf(b.URL) && len(old.HeaderNames) > 0 {
			fs.f.Add("headers", "headers_required", "must be sent again when url moves to another host, so credentials are not sent to a new host by accident")
		}
	}
	fs.unknown()
	if err := fs.err(); err != nil {
		return nil, err
	}
	d := &store.Doc{ID: store.NewID(), Name: b.Name, Active: true}
	if cur != nil {
		d.ID, d.Secret = cur.ID, cur.Secret
	}
	if headersSent {
		d.Secret = nil
		b.HeaderNames = make([]string, 0, len(headers))
		for k := range headers {
			b.HeaderNames = append(b.HeaderNames, k)
		}
		slices.Sort(b.HeaderNames)
		if len(headers) > 0 {
			plain, _ := json.Marshal(headers)
			sealed := s.keys.Seal(plain, secret.Binding{OrgID: org, Table: "mcp_servers", Field: "headers", RowID: d.ID})
			d.Secret = &sealed
		}
	}
	body, err := json.Marshal(b)
	if err != nil {
		return nil, err
	}
	d.Body = body
	return d, nil
}

// checkHeaders validates the headers sent to an MCP server (at most 10,
// settable names, one-line values).
func checkHeaders(f *fault.Fields, headers map[string]string) {
	if len(headers) > 10 {
		f.Invalidf("headers", "may have at most 10 entries (got %d)", len(headers))
	}
	names := make([]string, 0, len(headers))
	for k := range headers {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if !headerNameRE.MatchString(k) || slices.Contains(reservedHeaders, strings.ToLower(k)) {
			f.Invalidf("headers."+k, "is not a header name that can be set")
		}
		if v := headers[k]; len(v) > 8192 || strings.ContainsAny(v, "\r\n") {
			f.Invalidf("headers."+k, "value must be at most 8192 characters on one line")
		}
	}
}

func hostOf(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return p.Host
}
