package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/parley-voice/parley/internal/campaign"
	"github.com/parley-voice/parley/internal/store"
)

// testPages checks that every paged list walks the organization's rows in one
// stable order: pages join up to the whole list without gaps or repeats, the
// total counts every row, and another organization's rows never show.
func testPages(t *testing.T, db *store.DB) {
	ctx := context.Background()
	a, b := newOrg(t, db, "A"), newOrg(t, db, "B")
	const n = 5
	var asst string
	for i := range n {
		for _, org := range []string{a.ID, b.ID} {
			d := &store.Doc{Kind: store.Assistants, OrgID: org, Name: fmt.Sprintf("a%d", i), Active: true, Body: json.RawMessage(`{}`)}
			if err := db.CreateDoc(ctx, d); err != nil {
				t.Fatal(err)
			}
			if org == a.ID {
				asst = d.ID
			}
			num := &store.Number{OrgID: org, PhoneNumber: fmt.Sprintf("+318508350%02d", 2*i+boolInt(org == a.ID)), IsActive: true}
			if err := db.CreateNumber(ctx, num); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range n {
		c := &store.Campaign{OrgID: a.ID, Name: fmt.Sprintf("c%d", i), AgentID: asst, Status: campaign.Draft, ScheduleStartTime: "09:00:00", ScheduleEndTime: "17:00:00", Timezone: "UTC"}
		if err := db.CreateCampaign(ctx, c, nil); err != nil {
			t.Fatal(err)
		}
	}
	lists := map[string]func(org string, p store.Page) ([]string, int, error){
		"docs": func(org string, p store.Page) ([]string, int, error) {
			ds, total, err := db.ListDocsPage(ctx, store.Assistants, org, p)
			return ids(ds, func(d store.Doc) string { return d.ID }), total, err
		},
		"numbers": func(org string, p store.Page) ([]string, int, error) {
			ns, total, err := db.ListNumbersPage(ctx, org, p)
			return ids(ns, func(n store.Number) string { return n.ID }), total, err
		},
		"campaigns": func(org string, p store.Page) ([]string, int, error) {
			cs, total, err := db.ListCampaignsPage(ctx, org, p)
			return ids(cs, func(c store.Campaign) string { return c.ID }), total, err
		},
	}
	for name, list := range lists {
		all, total, err := list(a.ID, store.Page{Limit: 100})
		if err != nil || total != n || len(all) != n {
			t.Fatalf("%s: whole list = %d rows, total %d, %v; want %d", name, len(all), total, err, n)
		}
		var joined []string
		for off := 0; off < n+2; off += 2 {
			page, total, err := list(a.ID, store.Page{Limit: 2, Offset: off})
			if err != nil || total != n {
				t.Fatalf("%s: page at %d: total %d, %v", name, off, total, err)
			}
			joined = append(joined, page...)
		}
		if !slices.Equal(joined, all) {
			t.Fatalf("%s: pages of 2 = %v, whole list = %v", name, joined, all)
		}
		if page, total, err := list(a.ID, store.Page{Limit: 10, Offset: n}); err != nil || len(page) != 0 || total != n {
			t.Fatalf("%s: past the end = %v, total %d, %v", name, page, total, err)
		}
		for _, id := range all {
			other, _, _ := list(b.ID, store.Page{Limit: 100})
			if slices.Contains(other, id) {
				t.Fatalf("%s: org B lists org A's %s", name, id)
			}
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func ids[T any](rows []T, id func(T) string) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = id(r)
	}
	return out
}
