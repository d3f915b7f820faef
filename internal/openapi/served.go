package openapi

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/parley-voice/parley/internal/catalog"
)

// providerUnions are the schemas that choose a provider config by its
// "provider" field, per catalog section.
var providerUnions = []struct {
	section catalog.Section
	name    string
}{{catalog.STT, "STTConfig"}, {catalog.LLM, "LLMConfig"}, {catalog.TTS, "TTSConfig"}}

// narrow removes from the provider unions what served says this server does
// not run (see DocumentFor).
func narrow(schemas map[string]*schema, cat *catalog.Catalog, served Served) {
	for _, u := range providerUnions {
		union := schemas[u.name]
		if union == nil || union.Discriminator == nil {
			continue
		}
		kept := map[string]bool{} // schema refs still chosen by some value
		var refused []string
		for _, key := range sortedKeys(union.Discriminator.Mapping) {
			ref := union.Discriminator.Mapping[key]
			p := cat.Provider(u.section, key)
			if p == nil {
				kept[ref] = true
				continue
			}
			if err := served(u.section, p.ID, ""); err != nil {
				delete(union.Discriminator.Mapping, key)
				if key == p.ID {
					refused = append(refused, fmt.Sprintf("%s (%v)", p.ID, err))
				}
				continue
			}
			kept[ref] = true
			narrowModels(schemas[strings.TrimPrefix(ref, schemaRef)], u.section, p, served)
		}
		union.OneOf = slices.DeleteFunc(union.OneOf, func(s *schema) bool { return !kept[s.Ref] })
		if len(refused) > 0 {
			union.Description += " Known but not run by this server (choosing one is refused with 400): " + strings.Join(refused, "; ") + "."
		}
	}
}

// narrowModels drops the models served refuses from a provider config's
// model enum, moving the default to the first one left.
func narrowModels(s *schema, section catalog.Section, p *catalog.Provider, served Served) {
	if s == nil || s.Properties["model"] == nil {
		return
	}
	m := s.Properties["model"]
	m.Enum = slices.DeleteFunc(m.Enum, func(v any) bool {
		id, _ := v.(string)
		return served(section, p.ID, id) != nil
	})
	if len(m.Enum) > 0 && !slices.Contains(m.Enum, m.Default) && m.Default != nil {
		m.Default = m.Enum[0]
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
