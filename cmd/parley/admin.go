package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/parley-voice/parley/internal/apikey"
	"github.com/parley-voice/parley/internal/store"
)

func migrate(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	c, _, err := loadConfig("migrate", args, env, stderr, nil)
	if err != nil {
		return err
	}
	log := newLogger(c, stderr)
	db, err := openStore(ctx, c, log)
	if err != nil {
		return err
	}
	defer db.Close()
	fmt.Fprintf(stdout, "database (%s) is up to date\n", db.Driver())
	return nil
}

// admin runs the org and key subcommands against the configured database.
func admin(ctx context.Context, cmd string, args, env []string, stdout, stderr io.Writer) error {
	var name, parent, orgID, keyID, key string
	var minutes, add float64
	var minutesSet, addSet bool
	extra := func(fs *flag.FlagSet) {
		fs.StringVar(&name, "name", "", "name of the organization or key")
		fs.StringVar(&parent, "parent", "", "parent organization id")
		fs.StringVar(&orgID, "org", "", "organization id")
		fs.StringVar(&keyID, "id", "", "API key id (as printed by key create / key list)")
		fs.StringVar(&key, "key", "", "the API key itself")
		fs.Func("minutes", "minutes balance (org balance: set it to this)", func(v string) error {
			_, err := fmt.Sscan(v, &minutes)
			minutesSet = err == nil
			return err
		})
		fs.Func("add", "org balance: minutes to add to the balance (negative to take)", func(v string) error {
			_, err := fmt.Sscan(v, &add)
			addSet = err == nil
			return err
		})
	}
	c, _, err := loadConfig(cmd, args, env, stderr, extra)
	if err != nil {
		return err
	}
	keys, db, err := openBackend(ctx, c, newLogger(c, stderr))
	if err != nil {
		return err
	}
	defer db.Close()

	switch cmd {
	case "org create":
		if name == "" {
			return errors.New("org create: --name is required")
		}
		o := &store.Org{Name: name, MinutesBalance: minutes, HasLocalModelsAccess: true}
		if parent != "" {
			o.ParentID = &parent
		} else if !minutesSet {
			o.MinutesBalance = c.TrialMinutes // a child spends its parent's minutes
		}
		k, id := apikey.New(keys)
		if err := db.CreateOrg(ctx, o, &store.APIKey{ID: id.ID, Hash: id.Hash, Prefix: id.Prefix, Name: "created by parley org create"}); err != nil {
			return fmt.Errorf("org create: %w", err)
		}
		fmt.Fprintf(stdout, "org_id:  %s\nkey_id:  %s\napi_key: %s\nminutes: %g\n(the API key is shown only now)\n", o.ID, id.ID, k, o.MinutesBalance)
	case "org list":
		orgs, err := db.ListOrgs(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tPARENT\tMINUTES\tCREATED")
		for _, o := range orgs {
			p := "-"
			if o.ParentID != nil {
				p = *o.ParentID
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%g\t%s\n", o.ID, o.Name, p, o.MinutesBalance, o.CreatedAt.Format("2006-01-02 15:04"))
		}
		return tw.Flush()
	case "org balance":
		if orgID == "" || minutesSet == addSet {
			return errors.New("org balance: --org and one of --minutes (set the balance) or --add (add to it) are required")
		}
		if addSet {
			if minutes, err = db.AddMinutes(ctx, orgID, add); err != nil {
				return fmt.Errorf("org balance: %w", err)
			}
		} else if err := db.SetMinutesBalance(ctx, orgID, minutes); err != nil {
			return fmt.Errorf("org balance: %w", err)
		}
		fmt.Fprintf(stdout, "organization %s now has %g minutes\n", orgID, minutes)
	case "key create":
		if orgID == "" {
			return errors.New("key create: --org is required")
		}
		k, id := apikey.New(keys)
		if err := db.CreateAPIKey(ctx, &store.APIKey{ID: id.ID, OrgID: orgID, Hash: id.Hash, Prefix: id.Prefix, Name: name}); err != nil {
			return fmt.Errorf("key create: %w", err)
		}
		fmt.Fprintf(stdout, "key_id:  %s\napi_key: %s\n(the API key is shown only now)\n", id.ID, k)
	case "key list":
		if orgID == "" {
			return errors.New("key list: --org is required")
		}
		list, err := db.ListAPIKeys(ctx, orgID)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KEY_ID\tPREFIX\tNAME\tCREATED\tREVOKED")
		for _, k := range list {
			rev := "-"
			if k.RevokedAt != nil {
				rev = k.RevokedAt.Format("2006-01-02 15:04")
			}
			fmt.Fprintf(tw, "%s\t%s…\t%s\t%s\t%s\n", k.ID, k.Prefix, k.Name, k.CreatedAt.Format("2006-01-02 15:04"), rev)
		}
		return tw.Flush()
	case "key revoke":
		switch {
		case keyID != "" && key != "":
			return errors.New("key revoke: give --id or --key, not both")
		case key != "":
			keyID = apikey.Derive(keys, key).ID
		case keyID == "":
			return errors.New("key revoke: --id or --key is required")
		}
		if err := db.RevokeAPIKey(ctx, keyID); err != nil {
			return fmt.Errorf("key revoke: %w", err)
		}
		fmt.Fprintf(stdout, "revoked key %s\n", keyID)
	default:
		return fmt.Errorf("unknown command %q", cmd)
	}
	return nil
}
