package xaifake

import "github.com/parley-voice/parley/internal/provider/openai/openaifake"

// NewRealtime returns a fake of xAI's Grok voice agent API
// (wss://api.x.ai/v1/realtime): the shared Realtime protocol fake in its
// xAI dialect (flat session, xAI voices, no conversation.item.truncate).
// It answers any path.
func NewRealtime(cfg openaifake.RealtimeConfig) *openaifake.RealtimeServer {
	cfg.Mode = openaifake.RealtimeXAI
	return openaifake.NewRealtime(cfg)
}
