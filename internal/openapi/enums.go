package openapi

import (
	"maps"
	"slices"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/campaign"
	"github.com/parley-voice/parley/internal/catalog"
	"github.com/parley-voice/parley/internal/webhook"
)

// The document's closed value lists are read from where the server's
// validation reads them: the provider catalog (providers, models, voices,
// languages, BYOK providers, provider settings with fixed values) and the
// Go typed enums (call, campaign and lead statuses, call directions,
// webhook events). TestEnumsMatchCatalog pins that they agree.

// stringsOf converts typed enum values to their wire spellings.
func stringsOf[T interface{ String() string }](vs []T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.String()
	}
	return out
}

func callStatuses() []string     { return stringsOf(call.Statuses()) }
func callDirections() []string   { return stringsOf(call.Directions()) }
func campaignStatuses() []string { return stringsOf(campaign.Statuses()) }
func leadStatuses() []string     { return stringsOf(campaign.LeadStatuses()) }
func webhookEvents() []string    { return webhook.Events() }

// usageTypes are the usage logs' call_type values, one per kind of call.
func usageTypes() []string {
	var out []string
	for _, d := range call.Directions() {
		if t := d.UsageType(); !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// catalogModels is the model enum of a catalog provider, default first;
// legacy models are in the enum (they are accepted) and desc names them.
func catalogModels(cat *catalog.Catalog, s catalog.Section, provider, desc string) *schema {
	p := cat.Provider(s, provider)
	if p == nil || len(p.Models) == 0 {
		return str().d(desc)
	}
	ids := make([]string, len(p.Models))
	for i, m := range p.Models {
		ids[i] = m.ID
	}
	return models(desc, ids...)
}

// voiceIDs lists the voices of a catalog voice set.
func voiceIDs(cat *catalog.Catalog, set string) []string {
	if vs := cat.VoiceSet(set); vs != nil {
		return vs.IDs()
	}
	return nil
}

// fieldValues returns the fixed values of the field at path (member names)
// among fields, or nil.
func fieldValues(fields []*catalog.Field, path ...string) []string {
	var f *catalog.Field
	for _, name := range path {
		f = nil
		for _, c := range fields {
			if c.Name == name {
				f = c
				break
			}
		}
		if f == nil {
			return nil
		}
		fields = f.Fields
	}
	if f == nil {
		return nil
	}
	return f.Values
}

// providerEnum is the enum of a catalog provider's setting (e.g. the
// gladia region), or a plain string when the catalog has none.
func providerEnum(cat *catalog.Catalog, s catalog.Section, provider string, path ...string) *schema {
	if p := cat.Provider(s, provider); p != nil {
		if vs := fieldValues(p.Fields, path...); len(vs) > 0 {
			return enum(vs...)
		}
	}
	return str()
}

// providerLanguages is the language enum of a provider that lists its own
// languages (local STT), else of every STT provider.
func providerLanguages(cat *catalog.Catalog, provider string) []string {
	if p := cat.Provider(catalog.STT, provider); p != nil && len(p.Languages) > 0 {
		return p.Languages
	}
	return cat.Languages()
}

// providerIDsWithAliases lists a section's provider ids and then their aliases.
func providerIDsWithAliases(cat *catalog.Catalog, s catalog.Section, provider string) []string {
	out := []string{provider}
	aliases := cat.Aliases(s)
	for _, alias := range slices.Sorted(maps.Keys(aliases)) {
		if aliases[alias] == provider {
			out = append(out, alias)
		}
	}
	return out
}
