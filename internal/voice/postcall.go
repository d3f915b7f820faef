package voice

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/parley-voice/parley/internal/analysis"
	"github.com/parley-voice/parley/internal/catalog"
	"github.com/parley-voice/parley/internal/store"
)

// AfterCall queues a call's post-call work (summary, analysis, recording
// upload, end-of-call report) inside the transaction that records its end.
type AfterCall interface {
	Schedule(ctx context.Context, tx *sql.Tx, orgID, callID, recording string) error
	// Settled returns the summary of an ending call that needs no post-call
	// work (see postcall.Service.Settled), and true; the engine writes it
	// with the end instead of queueing the work.
	Settled(c *store.Call) (string, bool)
}

// textProvider is the text model provider behind a realtime one: its
// post-call work runs on the same vendor's text models.
var textProvider = map[string]string{
	"xai_realtime":    "xai",
	"openai_live":     "openai",
	"google_realtime": "google",
}

// PostcallModel returns the model that summarises and analyses calls of an
// assistant (spec §8.2): its llm_config.analysis_model when it names one,
// else the catalog's post-call model of its llm_config provider (or the
// server's override for it), on that provider's client,
// with the organization's BYOK key or the server's, as for the call itself.
func (e *Engine) PostcallModel(ctx context.Context, orgID string, doc json.RawMessage) (analysis.Model, error) {
	var a struct {
		LLM struct {
			Provider string `json:"provider"`
			// AnalysisModel is google_realtime's own choice of post-call
			// model (spec §8.2), which wins over the defaults.
			AnalysisModel string `json:"analysis_model"`
		} `json:"llm_config"`
	}
	if err := json.Unmarshal(doc, &a); err != nil {
		return analysis.Model{}, fmt.Errorf("read the call's assistant: %w", err)
	}
	keys, err := e.orgKeys(ctx, orgID)
	if err != nil {
		return analysis.Model{}, err
	}
	id := a.LLM.Provider
	prov := e.cfg.Catalog.Provider(catalog.LLM, id)
	if prov == nil {
		return analysis.Model{}, fmt.Errorf("language model provider %q is not in the catalog", id)
	}
	model := prov.PostcallModel
	// A provider whose post-call model depends on the key kind (Gemini
	// Live: AI Studio or Vertex AI) takes the one of the key in use.
	for _, sec := range prov.BYOKSecrets {
		if m := prov.PostcallModels[sec]; m != "" && keys[strings.TrimSuffix(sec, "_secret_id")] != "" {
			model = m
			break
		}
	}
	if model == "" {
		for _, m := range prov.PostcallModels {
			if model == "" || m < model {
				model = m // deterministic when no key decides it
			}
		}
	}
	text := id
	if t, ok := textProvider[id]; ok {
		text = t
	}
	if m := e.cfg.PostcallModels[text]; m != "" {
		model = m
	}
	if m := a.LLM.AnalysisModel; m != "" {
		model = m
	}
	client, ok := e.cfg.Providers.LLM[text]
	if !ok {
		return analysis.Model{}, fmt.Errorf("language model provider %q (post-call model of %q) is not available on this server", text, id)
	}
	if model == "" {
		return analysis.Model{}, fmt.Errorf("no post-call model for provider %q", id)
	}
	key, _, err := e.key(keys, catalog.LLM, text)
	if err != nil {
		return analysis.Model{}, err
	}
	return analysis.Model{Provider: client, Name: model, APIKey: key}, nil
}
