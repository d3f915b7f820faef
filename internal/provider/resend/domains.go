package resend

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Domain is a sending domain as Resend reports it.
type Domain struct {
	ID     string
	Name   string
	Status string // not_started, pending, verified, failed, partially_verified, partially_failed, temporary_failure
	Region string // us-east-1, eu-west-1, sa-east-1, ap-northeast-1
	// CreatedAt is zero when the answer had no time this client could read.
	CreatedAt time.Time
	// Records are the DNS records to publish; list answers carry none.
	Records []Record
}

// Record is one DNS record a domain needs.
type Record struct {
	Record   string // SPF, DKIM, MX, Receiving, Tracking, …
	Name     string
	Type     string // TXT, MX, CNAME
	TTL      string // "Auto" or seconds
	Status   string
	Value    string
	Priority *int // MX records
}

// wireDomain is a domain in Resend's answers. The create answer has been
// documented both with created_at and createdAt (resend-go's types differ
// between versions), so both are read.
type wireDomain struct {
	ID          string       `json:"id"`
	Name        string       `json:"name"`
	Status      string       `json:"status"`
	Region      string       `json:"region"`
	CreatedAt   string       `json:"created_at"`
	CreatedAtJS string       `json:"createdAt"`
	Records     []wireRecord `json:"records"`
}

type wireRecord struct {
	Record   string          `json:"record"`
	Name     string          `json:"name"`
	Type     string          `json:"type"`
	TTL      json.RawMessage `json:"ttl"` // "Auto", or a number in some answers
	Status   string          `json:"status"`
	Value    string          `json:"value"`
	Priority json.RawMessage `json:"priority"` // a number, or a numeric string
}

func (w wireDomain) domain() Domain {
	d := Domain{ID: w.ID, Name: w.Name, Status: w.Status, Region: w.Region}
	ts := w.CreatedAt
	if ts == "" {
		ts = w.CreatedAtJS
	}
	d.CreatedAt = parseTime(ts)
	for _, r := range w.Records {
		d.Records = append(d.Records, Record{Record: r.Record, Name: r.Name, Type: r.Type, TTL: scalar(r.TTL), Status: r.Status, Value: r.Value, Priority: number(r.Priority)})
	}
	return d
}

// timeLayouts are the spellings of Resend's timestamps: RFC 3339, and the
// PostgreSQL text form its examples show ("2023-04-26 20:21:26.347412+00").
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999-07", "2006-01-02 15:04:05.999999999-07:00", "2006-01-02T15:04:05.999999999-07"}

func parseTime(s string) time.Time {
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// scalar is a JSON string or number as text ("" for null or absent).
func scalar(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(v, &n) == nil {
		return n.String()
	}
	return ""
}

func number(v json.RawMessage) *int {
	if n, err := strconv.Atoi(scalar(v)); err == nil {
		return &n
	}
	return nil
}

// CreateDomain is a domain to add.
type CreateDomain struct {
	Name   string
	Region string // empty: Resend's default (us-east-1)
	// IdempotencyKey makes a retried create return the first one's
	// answer; empty means a random key.
	IdempotencyKey string
}

// CreateDomain adds a domain to the key's account. The answer has the DNS
// records to publish; the domain is "not_started" until verified.
func (c *Client) CreateDomain(ctx context.Context, key string, req CreateDomain) (Domain, error) {
	body := struct {
		Name   string `json:"name"`
		Region string `json:"region,omitempty"`
	}{req.Name, req.Region}
	var w wireDomain
	if err := c.do(ctx, key, http.MethodPost, "domains", nil, trimKey(req.IdempotencyKey), body, &w); err != nil {
		return Domain{}, err
	}
	return w.domain(), nil
}

// GetDomain reads one domain with its records and their statuses.
func (c *Client) GetDomain(ctx context.Context, key, id string) (Domain, error) {
	var w wireDomain
	if err := c.do(ctx, key, http.MethodGet, "domains/"+url.PathEscape(id), nil, "", nil, &w); err != nil {
		return Domain{}, err
	}
	return w.domain(), nil
}

// VerifyDomain asks Resend to check the domain's DNS records. Checking is
// asynchronous: the domain turns "pending", and GetDomain later tells the
// outcome.
func (c *Client) VerifyDomain(ctx context.Context, key, id string) error {
	return c.do(ctx, key, http.MethodPost, "domains/"+url.PathEscape(id)+"/verify", nil, "", nil, nil)
}

// DeleteDomain removes a domain from the key's account.
func (c *Client) DeleteDomain(ctx context.Context, key, id string) error {
	return c.do(ctx, key, http.MethodDelete, "domains/"+url.PathEscape(id), nil, "", nil, nil)
}

// listPage is the largest page Resend serves.
const listPage = 100

// MaxListed bounds how many domains ListDomains reads.
const MaxListed = 1000

// ListDomains returns the key's domains (without records), following
// Resend's cursor pages, up to MaxListed.
func (c *Client) ListDomains(ctx context.Context, key string) ([]Domain, error) {
	var out []Domain
	after := ""
	for len(out) < MaxListed {
		q := url.Values{"limit": {strconv.Itoa(listPage)}}
		if after != "" {
			q.Set("after", after)
		}
		var page struct {
			Data    []wireDomain `json:"data"`
			HasMore bool         `json:"has_more"`
		}
		if err := c.do(ctx, key, http.MethodGet, "domains", q, "", nil, &page); err != nil {
			return nil, err
		}
		for _, w := range page.Data {
			out = append(out, w.domain())
		}
		if !page.HasMore || len(page.Data) == 0 {
			break
		}
		after = page.Data[len(page.Data)-1].ID
	}
	if len(out) > MaxListed {
		out = out[:MaxListed]
	}
	return out, nil
}

func trimKey(k string) string {
	k = strings.TrimSpace(k)
	if len(k) > maxIdempotencyKey {
		k = k[:maxIdempotencyKey]
	}
	return k
}
