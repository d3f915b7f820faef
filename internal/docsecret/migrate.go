package docsecret

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/parley-voice/parley/internal/store"
)

// Store is what SealStored needs (*store.DB satisfies it).
type Store interface {
	AllDocs(ctx context.Context, k store.Kind) ([]store.Doc, error)
	UpdateDoc(ctx context.Context, k store.Kind, orgID, id string, change func(cur *store.Doc) (*store.Doc, error)) (*store.Doc, error)
	// Scrub removes replaced values from the database files (SQLite keeps
	// them in its WAL and free pages).
	Scrub(ctx context.Context) error
}

var _ Store = (*store.DB)(nil)

// SealStored seals the secrets still in clear in stored documents (rows
// written before Parley sealed them) and marks every document's slots. It
// is idempotent: a document already sealed and marked is not written. When
// it rewrote rows it scrubs the database files, so the clear values do not
// linger in them. Run it at startup, after the SQL migrations. It returns
// how many rows it rewrote.
func SealStored(ctx context.Context, db Store, keys Keys) (int, error) {
	n := 0
	for _, k := range Kinds {
		docs, err := db.AllDocs(ctx, k)
		if err != nil {
			return n, fmt.Errorf("seal stored secrets: %w", err)
		}
		for i := range docs {
			d := &docs[i]
			var doc map[string]json.RawMessage
			if err := json.Unmarshal(d.Body, &doc); err != nil {
				return n, fmt.Errorf("seal stored secrets: decode %s %s: %w", k.Noun(), d.ID, err)
			}
			if _, changed := Extract(k, doc); !changed {
				continue
			}
			// Again inside the row's transaction, on the row as it is now.
			_, err := db.UpdateDoc(ctx, k, d.OrgID, d.ID, func(cur *store.Doc) (*store.Doc, error) {
				return sealRow(keys, cur)
			})
			if err != nil {
				return n, fmt.Errorf("seal stored secrets of %s %s: %w", k.Noun(), d.ID, err)
			}
			n++
		}
	}
	if n > 0 {
		if err := db.Scrub(ctx); err != nil {
			return n, fmt.Errorf("seal stored secrets: %w", err)
		}
	}
	return n, nil
}

// sealRow moves the clear secrets of cur into its sealed column, next to
// those already sealed there (a clear one wins: it is the newer).
func sealRow(keys Keys, cur *store.Doc) (*store.Doc, error) {
	sealed, err := Open(keys, cur)
	if err != nil {
		return nil, err
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(cur.Body, &doc); err != nil {
		return nil, fmt.Errorf("decode %s %s: %w", cur.Kind.Noun(), cur.ID, err)
	}
	clear, _ := Extract(cur.Kind, doc)
	for slot, v := range clear {
		sealed[slot] = v
	}
	next := *cur
	if next.Body, err = json.Marshal(doc); err != nil {
		return nil, fmt.Errorf("encode %s %s: %w", cur.Kind.Noun(), cur.ID, err)
	}
	if next.Secret, err = Seal(keys, cur.Kind, cur.OrgID, cur.ID, sealed); err != nil {
		return nil, err
	}
	return &next, nil
}
