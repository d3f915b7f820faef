package main

import (
	"log/slog"

	"github.com/parley-voice/parley/internal/domain"
	"github.com/parley-voice/parley/internal/provider/resend"
	"github.com/parley-voice/parley/internal/secret"
	"github.com/parley-voice/parley/internal/store"
)

// newDomains builds the Resend client and the e-mail domain service over it.
func newDomains(c *config, db *store.DB, keys *secret.Keyring, log *slog.Logger) (*domain.Service, error) {
	rc, err := resend.New(resend.Config{BaseURL: c.ResendBaseURL, UserAgent: "parley/" + version, Logger: log.With("component", "resend")})
	if err != nil {
		return nil, err
	}
	return domain.New(domain.Config{Store: db, Keyring: keys, Resend: rc, Logger: log.With("component", "domains")}), nil
}
