package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/parley-voice/parley/internal/apikey"
	"github.com/parley-voice/parley/internal/secret"
	"github.com/parley-voice/parley/internal/store"
)

// firstRun makes a server started on an empty database usable at once:
// without PARLEY_BOOTSTRAP_API_KEY it creates a first organization with
// the trial balance and an API key. The returned function prints, to
// stdout and never to the log, the key (this once) with the next command
// to try, or on later starts how to make another key; serve calls it once
// the API listens.
func firstRun(ctx context.Context, db *store.DB, keys *secret.Keyring, c *config, log *slog.Logger) (func(io.Writer), error) {
	if c.BootstrapAPIKey != "" {
		return func(io.Writer) {}, nil // ensureBootstrapKey's organization
	}
	key, ident := apikey.New(keys)
	org := &store.Org{Name: "Default", MinutesBalance: c.TrialMinutes, HasLocalModelsAccess: true}
	created, err := db.CreateFirstOrg(ctx, org, &store.APIKey{ID: ident.ID, Hash: ident.Hash, Prefix: ident.Prefix, Name: "first run"})
	if err != nil {
		return nil, fmt.Errorf("create the first organization: %w", err)
	}
	if created {
		log.Info("created the first organization; its API key is printed on standard output, once", "org_id", org.ID, "minutes", c.TrialMinutes)
		return func(w io.Writer) { printFirstKey(w, c, org.ID, key) }, nil
	}
	first, err := firstTopLevel(ctx, db)
	if err != nil {
		return nil, err
	}
	return func(w io.Writer) {
		fmt.Fprintf(w, "Parley is serving %s/api/v1. Another API key: parley key create --org %s (with the same PARLEY_DATA_DIR or PARLEY_DATABASE_URL)\n",
			c.PublicURL, first)
	}, nil
}

// firstTopLevel is the oldest organization without a parent ("<org id>"
// when there is none: every organization is somebody's child).
func firstTopLevel(ctx context.Context, db *store.DB) (string, error) {
	orgs, err := db.ListOrgs(ctx)
	if err != nil {
		return "", err
	}
	for _, o := range orgs {
		if o.ParentID == nil {
			return o.ID, nil
		}
	}
	return "<org id>", nil
}

// printFirstKey tells the first user their API key and what to do next.
func printFirstKey(w io.Writer, c *config, orgID, key string) {
	fmt.Fprintf(w, `
Parley created its first organization (%s) with %g trial minutes.
Its API key, shown only now:

  export PARLEY_API_KEY=%s

Try it (in another terminal, after the export above):

  curl -s %s/api/v1/organizations -H "Authorization: Bearer $PARLEY_API_KEY"

Another key:  parley key create --org %s
More minutes: parley org balance --org %s --add 60
(run them with the same PARLEY_DATA_DIR or PARLEY_DATABASE_URL as the server)

`, orgID, c.TrialMinutes, key, c.PublicURL, orgID, orgID)
}
