package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/parley-voice/parley/internal/apikey"
	"github.com/parley-voice/parley/internal/fault"
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
		d := s.limiter.Allow(stored.ID)
		h := w.Header()
		h.Set("X-RateLimit-Limit", strconv.Itoa(d.Limit))
		h.Set("X-RateLimit-Remaining", strconv.Itoa(d.Remaining))
		h.Set("X-RateLimit-Reset", strconv.FormatInt(d.Reset.Unix(), 10))
		if !d.Allowed {
			secs := int((d.RetryAfter + 999_999_999) / 1_000_000_000)
			h.Set("Retry-After", strconv.Itoa(secs))
			writeError(w, r, &fault.Error{Kind: fault.RateLimited, Code: "rate_limit_exceeded",
				Message: "Too many requests. Please retry after " + strconv.Itoa(secs) + " seconds."})
			return
		}
		log := s.log.With("org_id", stored.OrgID)
		ctx = context.WithValue(context.WithValue(ctx, orgKey, stored.OrgID), loggerKey, log)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}
