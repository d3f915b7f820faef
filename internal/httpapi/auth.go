package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/parley-voice/parley/internal/apikey"
	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/ratelimit"
)

type ctxKey int

const (
	orgKey ctxKey = iota
	loggerKey
)

// orgID returns the authenticated organization of the request.
func orgID(r *http.Request) string {
	id, _ := r.Context().Value(orgKey).(string)
	return id
}

func loggerFrom(r *http.Request) *slog.Logger {
	l, _ := r.Context().Value(loggerKey).(*slog.Logger)
	return l
}

var (
	errNoKey      = &fault.Error{Kind: fault.Unauthorized, Code: "unauthorized", Message: "Invalid or missing API key"}
	errBadKey     = &fault.Error{Kind: fault.Unauthorized, Code: "unauthorized", Message: "Invalid API key"}
	errRevokedKey = &fault.Error{Kind: fault.Unauthorized, Code: "api_key_revoked", Message: "API key has been revoked"}
)

// authenticate checks the bearer key, applies the per-key rate limit, and puts
// the key's organization into the request context.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := context.WithValue(r.Context(), loggerKey, s.log)
		r = r.WithContext(ctx)
		auth := r.Header.Get("Authorization")
		scheme, key, ok := strings.Cut(auth, " ")
		key = strings.TrimSpace(key)
		if !ok || !strings.EqualFold(scheme, "Bearer") || key == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="parley"`)
			writeError(w, r, errNoKey)
			return
		}
		if !apikey.Plausible(key) {
			writeError(w, r, errBadKey)
			return
		}
		ident := apikey.Derive(s.keys, key)
		stored, err := s.db.APIKeyByID(ctx, ident.ID)
		if err != nil {
			if fault.KindOf(err) == fault.NotFound {
				err = errBadKey
			}
			writeError(w, r, err)
			return
		}
		if !ident.Matches(stored.Hash) {
			writeError(w, r, errBadKey)
			return
		}
		if stored.RevokedAt != nil {
			writeError(w, r, errRevokedKey)
			return
		}
		if err := rateHeaders(w, s.limiter.Allow(stored.ID), "Too many requests"); err != nil {
			writeError(w, r, err)
			return
		}
		log := s.log.With("org_id", stored.OrgID)
		ctx = context.WithValue(context.WithValue(ctx, orgKey, stored.OrgID), loggerKey, log)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// rateHeaders sets the X-RateLimit-* headers of a limiter decision and, when
// the request is over the limit, Retry-After; it then returns the 429 error
// whose message starts with what.
func rateHeaders(w http.ResponseWriter, d ratelimit.Decision, what string) error {
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(d.Limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(d.Remaining))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(d.Reset.Unix(), 10))
	if d.Allowed {
		return nil
	}
	secs := int((d.RetryAfter + time.Second - 1) / time.Second)
	h.Set("Retry-After", strconv.Itoa(secs))
	return &fault.Error{Kind: fault.RateLimited, Code: "rate_limit_exceeded",
		Message: what + ". Please retry after " + strconv.Itoa(secs) + " seconds."}
}
