// Package resendfake is a fake Resend REST API for tests: domains with
// their DNS records per API key (one key, one account), verification driven
// by the test (POST /domains/{id}/verify makes a domain "pending",
// MarkVerified or MarkFailed settles it), e-mails accepted and kept for
// inspection, and errors in Resend's {statusCode, name, message} shape,
// including injected ones (Fail).
package resendfake

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Config configures a Server.
type Config struct {
	// Keys are the API keys accepted, each its own account. More can be
	// added with AddKey.
	Keys []string
	// CreatedAtCamel makes the create answer spell its time "createdAt"
	// (as resend-go's first CreateDomainResponse read it) instead of
	// "created_at".
	CreatedAtCamel bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Failure is an error answer the server gives instead of serving a request.
type Failure struct {
	Status     int
	Name       string
	Message    string
	RetryAfter int // seconds, sent as retry-after on a 429 when > 0
}

// Request is what the server saw of one request.
type Request struct {
	Method, Path, Query       string
	Key                       string // the bearer key sent
	UserAgent, IdempotencyKey string
	ContentType               string
}

// Email is one accepted e-mail.
type Email struct {
	ID             string
	Key            string // the account it was sent with
	From           string
	To             []string
	Subject        string
	HTML, Text     string
	ReplyTo        []string
	Headers        map[string]string
	IdempotencyKey string
}

type record struct {
	Record   string `json:"record"`
	Name     string `json:"name"`
	Type     string `json:"type"`
	TTL      string `json:"ttl"`
	Status   string `json:"status"`
	Value    string `json:"value"`
	Priority *int   `json:"priority,omitempty"`
}

type domain struct {
	key       string
	ID        string
	Name      string
	Status    string
	Region    string
	CreatedAt time.Time
	Records   []record
}

// Server is the fake, an http.Handler. It is safe for concurrent use.
type Server struct {
	cfg Config

	mu       sync.Mutex
	keys     map[string]bool
	domains  []*domain // in creation order
	emails   []Email
	sentKeys map[string]string // idempotency key → e-mail id
	fails    []Failure
	requests []Request
	before   func(Request)
}

// New returns a Server configured by cfg.
func New(cfg Config) *Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, keys: map[string]bool{}, sentKeys: map[string]string{}}
	for _, k := range cfg.Keys {
		s.keys[k] = true
	}
	return s
}

// AddKey accepts one more API key (a new, empty account).
func (s *Server) AddKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[key] = true
}

// BeforeServing sets a function called with each request before it is
// served (nil: none), e.g. to change the world while Resend works. It must
// not call the Server's methods.
func (s *Server) BeforeServing(f func(Request)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.before = f
}

// Fail queues error answers: each of the next requests gets the next one.
func (s *Server) Fail(f ...Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fails = append(s.fails, f...)
}

// AddDomain puts a domain straight into key's account (made in Resend's
// dashboard, say) and returns its id.
func (s *Server) AddDomain(key, name, region string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.add(key, name, region).ID
}

// MarkVerified settles a domain and its records as verified.
func (s *Server) MarkVerified(id string) bool { return s.settle(id, "verified") }

// MarkFailed settles a domain and its records as failed.
func (s *Server) MarkFailed(id string) bool { return s.settle(id, "failed") }

func (s *Server) settle(id, status string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.find("", id)
	if d == nil {
		return false
	}
	d.Status = status
	for i := range d.Records {
		d.Records[i].Status = status
	}
	return true
}

// DomainStatus returns a domain's status, "" when there is no such domain.
func (s *Server) DomainStatus(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.find("", id); d != nil {
		return d.Status
	}
	return ""
}

// Domains returns the names of key's domains, in creation order.
func (s *Server) Domains(key string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, d := range s.domains {
		if d.key == key {
			out = append(out, d.Name)
		}
	}
	return out
}

// Emails returns the e-mails accepted so far.
func (s *Server) Emails() []Email {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.emails)
}

// Requests returns the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// newID returns a UUID v4, the form of Resend's ids.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// find returns key's domain id ("" key: any account's).
func (s *Server) find(key, id string) *domain {
	for _, d := range s.domains {
		if d.ID == id && (key == "" || d.key == key) {
			return d
		}
	}
	return nil
}

// add creates a domain with the records Resend asks for: the bounce MX and
// SPF TXT on the "send" subdomain, and a DKIM key.
func (s *Server) add(key, name, region string) *domain {
	if region == "" {
		region = "us-east-1"
	}
	ten := 10
	dkim := strings.ReplaceAll(newID(), "-", "")
	d := &domain{key: key, ID: newID(), Name: name, Status: "not_started", Region: region, CreatedAt: s.cfg.Now().UTC(), Records: []record{
		{Record: "SPF", Name: "send", Type: "MX", TTL: "Auto", Status: "not_started", Value: "feedback-smtp." + region + ".amazonses.com", Priority: &ten},
		{Record: "SPF", Name: "send", Type: "TXT", TTL: "Auto", Status: "not_started", Value: `"v=spf1 include:amazonses.com ~all"`},
		{Record: "DKIM", Name: "resend._domainkey", Type: "TXT", TTL: "Auto", Status: "not_started", Value: "p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQ" + dkim},
	}}
	s.domains = append(s.domains, d)
	return d
}

func (s *Server) writeError(w http.ResponseWriter, status int, name, msg string) {
	writeJSON(w, status, map[string]any{"statusCode": status, "name": name, "message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

var regions = []string{"us-east-1", "eu-west-1", "sa-east-1", "ap-northeast-1"}

// ServeHTTP answers one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	req := Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Key: key,
		UserAgent: r.UserAgent(), IdempotencyKey: r.Header.Get("Idempotency-Key"), ContentType: r.Header.Get("Content-Type")}
	s.requests = append(s.requests, req)
	if s.before != nil {
		s.before(req)
	}
	if len(s.fails) > 0 {
		f := s.fails[0]
		s.fails = s.fails[1:]
		if f.Status == http.StatusTooManyRequests && f.RetryAfter > 0 {
			w.Header().Set("retry-after", strconv.Itoa(f.RetryAfter))
			w.Header().Set("ratelimit-limit", "2")
			w.Header().Set("ratelimit-remaining", "0")
			w.Header().Set("ratelimit-reset", strconv.Itoa(f.RetryAfter))
		}
		s.writeError(w, f.Status, f.Name, f.Message)
		return
	}
	switch {
	case key == "":
		s.writeError(w, http.StatusUnauthorized, "missing_api_key", "Missing API key in the authorization header. Include the following header in the request: Authorization: Bearer YOUR_API_KEY")
		return
	case !s.keys[key]:
		s.writeError(w, http.StatusForbidden, "invalid_api_key", "API key is invalid")
		return
	}
	var body map[string]json.RawMessage
	if r.Method == http.MethodPost {
		raw, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if len(raw) > 0 && json.Unmarshal(raw, &body) != nil {
			s.writeError(w, http.StatusBadRequest, "validation_error", "Invalid JSON body")
			return
		}
	}
	path := strings.Trim(r.URL.Path, "/")
	parts := strings.Split(path, "/")
	switch {
	case path == "domains" && r.Method == http.MethodPost:
		s.createDomain(w, key, body)
	case path == "domains" && r.Method == http.MethodGet:
		s.listDomains(w, r, key)
	case len(parts) == 2 && parts[0] == "domains" && r.Method == http.MethodGet:
		if d := s.find(key, parts[1]); d != nil {
			writeJSON(w, http.StatusOK, s.domainJSON(d, false))
		} else {
			s.writeError(w, http.StatusNotFound, "not_found", "Domain not found")
		}
	case len(parts) == 2 && parts[0] == "domains" && r.Method == http.MethodDelete:
		d := s.find(key, parts[1])
		if d == nil {
			s.writeError(w, http.StatusNotFound, "not_found", "Domain not found")
			return
		}
		s.domains = slices.DeleteFunc(s.domains, func(x *domain) bool { return x == d })
		writeJSON(w, http.StatusOK, map[string]any{"object": "domain", "id": d.ID, "deleted": true})
	case len(parts) == 3 && parts[0] == "domains" && parts[2] == "verify" && r.Method == http.MethodPost:
		d := s.find(key, parts[1])
		if d == nil {
			s.writeError(w, http.StatusNotFound, "not_found", "Domain not found")
			return
		}
		if d.Status != "verified" {
			d.Status = "pending"
			for i := range d.Records {
				d.Records[i].Status = "pending"
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"object": "domain", "id": d.ID})
	case path == "emails" && r.Method == http.MethodPost:
		s.sendEmail(w, r, key, body)
	default:
		s.writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "Method "+r.Method+" is not allowed for /"+path)
	}
}

func (s *Server) domainJSON(d *domain, camel bool) map[string]any {
	out := map[string]any{"object": "domain", "id": d.ID, "name": d.Name, "status": d.Status, "region": d.Region, "records": d.Records,
		"capabilities": map[string]string{"sending": "enabled", "receiving": "disabled"}}
	if camel {
		out["createdAt"] = d.CreatedAt.Format(time.RFC3339Nano)
	} else {
		out["created_at"] = d.CreatedAt.Format("2006-01-02 15:04:05.000000-07")
	}
	return out
}

func (s *Server) createDomain(w http.ResponseWriter, key string, body map[string]json.RawMessage) {
	var name, region string
	if body["name"] == nil || json.Unmarshal(body["name"], &name) != nil || name == "" {
		s.writeError(w, http.StatusUnprocessableEntity, "missing_required_field", "Missing `name` field.")
		return
	}
	if body["region"] != nil && (json.Unmarshal(body["region"], &region) != nil || !slices.Contains(regions, region)) {
		s.writeError(w, http.StatusUnprocessableEntity, "invalid_region", "Region must be one of: "+strings.Join(regions, ", ")+".")
		return
	}
	if !strings.Contains(name, ".") || strings.ContainsAny(name, " /@") {
		s.writeError(w, http.StatusUnprocessableEntity, "validation_error", "Invalid domain name.")
		return
	}
	for _, d := range s.domains {
		if d.key == key && d.Name == name {
			s.writeError(w, http.StatusForbidden, "validation_error", fmt.Sprintf("The %s domain has been registered already.", name))
			return
		}
	}
	d := s.add(key, name, region)
	writeJSON(w, http.StatusOK, s.domainJSON(d, s.cfg.CreatedAtCamel))
}

func (s *Server) listDomains(w http.ResponseWriter, r *http.Request, key string) {
	limit := 20
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			s.writeError(w, http.StatusUnprocessableEntity, "validation_error", "The `limit` parameter must be between 1 and 100.")
			return
		}
		limit = n
	}
	var mine []*domain
	for _, d := range s.domains {
		if d.key == key {
			mine = append(mine, d)
		}
	}
	// Newest first, as Resend lists.
	slices.Reverse(mine)
	if after := r.URL.Query().Get("after"); after != "" {
		i := slices.IndexFunc(mine, func(d *domain) bool { return d.ID == after })
		if i < 0 {
			s.writeError(w, http.StatusUnprocessableEntity, "validation_error", "The `after` cursor is not a domain of this account.")
			return
		}
		mine = mine[i+1:]
	}
	more := len(mine) > limit
	if more {
		mine = mine[:limit]
	}
	data := []map[string]any{}
	for _, d := range mine {
		item := s.domainJSON(d, false)
		delete(item, "records")
		delete(item, "object")
		data = append(data, item)
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "has_more": more, "data": data})
}

// strings1 reads a string or an array of strings.
func strings1(v json.RawMessage) ([]string, bool) {
	if v == nil {
		return nil, true
	}
	var one string
	if json.Unmarshal(v, &one) == nil {
		return []string{one}, true
	}
	var many []string
	if json.Unmarshal(v, &many) == nil {
		return many, true
	}
	return nil, false
}

func (s *Server) sendEmail(w http.ResponseWriter, r *http.Request, key string, body map[string]json.RawMessage) {
	idem := r.Header.Get("Idempotency-Key")
	if idem != "" {
		if id, ok := s.sentKeys[key+"\x00"+idem]; ok {
			writeJSON(w, http.StatusOK, map[string]string{"id": id})
			return
		}
	}
	var e Email
	for _, f := range []string{"from", "to", "subject"} {
		if body[f] == nil {
			s.writeError(w, http.StatusUnprocessableEntity, "missing_required_field", "Missing `"+f+"` field.")
			return
		}
	}
	to, ok1 := strings1(body["to"])
	reply, ok2 := strings1(body["reply_to"])
	if json.Unmarshal(body["from"], &e.From) != nil || json.Unmarshal(body["subject"], &e.Subject) != nil || !ok1 || !ok2 || len(to) == 0 || len(to) > 50 {
		s.writeError(w, http.StatusUnprocessableEntity, "validation_error", "Invalid `from`, `to`, `subject` or `reply_to` field.")
		return
	}
	e.To, e.ReplyTo, e.Key, e.IdempotencyKey = to, reply, key, idem
	if body["html"] != nil {
		json.Unmarshal(body["html"], &e.HTML)
	}
	if body["text"] != nil {
		json.Unmarshal(body["text"], &e.Text)
	}
	if body["headers"] != nil && json.Unmarshal(body["headers"], &e.Headers) != nil {
		s.writeError(w, http.StatusUnprocessableEntity, "validation_error", "The `headers` field must be an object of strings.")
		return
	}
	addr, err := mail.ParseAddress(e.From)
	if err != nil {
		s.writeError(w, http.StatusUnprocessableEntity, "invalid_from_address", "Invalid `from` field. The email address needs to follow the `email@example.com` or `Name <email@example.com>` format.")
		return
	}
	for _, t := range to {
		if _, err := mail.ParseAddress(t); err != nil {
			s.writeError(w, http.StatusUnprocessableEntity, "validation_error", "Invalid `to` field. The email address needs to follow the `email@example.com` or `Name <email@example.com>` format.")
			return
		}
	}
	_, host, _ := strings.Cut(addr.Address, "@")
	verified := false
	for _, d := range s.domains {
		if d.key == key && strings.EqualFold(d.Name, host) && d.Status == "verified" {
			verified = true
		}
	}
	if !verified {
		s.writeError(w, http.StatusForbidden, "validation_error", fmt.Sprintf("The %s domain is not verified. Please, add and verify your domain on https://resend.com/domains", host))
		return
	}
	e.ID = newID()
	s.emails = append(s.emails, e)
	if idem != "" {
		s.sentKeys[key+"\x00"+idem] = e.ID
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": e.ID})
}
