package openapi

// This file describes llm_config (spec §8.2, §8.4): four text providers used
// in the STT → LLM → TTS pipeline and three realtime (speech-to-speech) ones.
// Models come from the catalog.

import "github.com/parley-voice/parley/internal/catalog"

// llmBase are the members every LLM provider accepts.
func llmBase(cat *catalog.Catalog, provider, modelDesc string) props {
	m := catalogModels(cat, catalog.LLM, provider, modelDesc)
	return props{
		"provider":    constant(provider),
		"model":       m,
		"temperature": number().between(0, 2).def(0.7),
		"messages":    array(ref("Message")).d("Conversation seed; the system prompt is the `system` message."),
		"tools":       array(ref("ToolDefinition")).d("Tools the model may call."),
	}
}

func maxTokens() *schema { return integer().between(1, 32768) }

func llmSchemas(c map[string]*schema, cat *catalog.Catalog) {
	c["OpenAILLMConfig"] = object(merge(llmBase(cat, "openai",
		"OpenAI model; `gpt-4o-mini` and `gpt-4o` are legacy (accepted, not offered). Reasoning effort is pinned to `none` for `gpt-5.6-*` and `gpt-5.4*`."),
		props{"max_completion_tokens": maxTokens()}), "provider").titled("OpenAI (text)")
	c["XAILLMConfig"] = object(llmBase(cat, "xai", "xAI Grok text model."), "provider").titled("xAI Grok (text)")
	c["MistralLLMConfig"] = object(llmBase(cat, "mistral", "Mistral model."), "provider").titled("Mistral (text)")
	c["GoogleLLMConfig"] = object(merge(llmBase(cat, "google", "Gemini via Vertex AI (EU); needs a `google_vertex` key."),
		props{"max_completion_tokens": maxTokens()}), "provider").titled("Google Gemini (text)")

	c["GoogleRealtimeConfig"] = object(merge(llmBase(cat, "google_realtime",
		"Gemini Live model; `gemini-live-2.5-flash-native-audio` needs a `google_vertex` key, the others a `google` key. `gemini-2.5-flash-native-audio-preview-12-2025` is legacy."),
		props{
			"voice":             ref("GoogleVoice").d("Default `Puck`."),
			"vertexai":          boolean().def(false),
			"location":          str().d("Vertex AI location."),
			"analysis_model":    str().d("Model used for the post-call summary and analysis."),
			"max_output_tokens": maxTokens(),
		}), "provider").titled("Google Gemini Live (realtime)")

	// Values outside the ranges are clamped, not rejected, so the ranges
	// are documented rather than enforced by the schema.
	c["XAITurnDetection"] = object(props{
		"threshold":           number().def(0.5).d("0–1; higher ignores more background noise."),
		"prefix_padding_ms":   number().def(300).d("0–2000 ms of audio kept before speech starts."),
		"silence_duration_ms": number().def(200).d("100–2000 ms of silence that ends the caller's turn."),
		"idle_timeout_ms":     number().d("0–30000 ms; the assistant speaks up again after this much silence. 0 or omitted = off."),
	}).d("Voice activity detection. Values outside the ranges are clamped to them; omitted fields use the provider default.")
	c["XAIProviderTool"] = oneOf(
		object(props{"type": constant("web_search")}, "type").titled("web_search"),
		object(props{
			"type":              constant("x_search"),
			"allowed_x_handles": array(str()).count(0, 20),
		}, "type").titled("x_search"),
		object(props{
			"type":             constant("file_search"),
			"vector_store_ids": array(str()).count(1, -1),
			"max_num_results":  integer().between(1, 50),
		}, "type", "vector_store_ids").titled("file_search"),
	).d("xAI server-side tool, chosen by `type`.")
	c["XAIRealtimeConfig"] = object(merge(llmBase(cat, "xai_realtime", "Grok voice model; `grok-voice-latest` and `grok-realtime-v1` are legacy."),
		props{
			"voice":            ref("XAIVoice").d("Default `ara`."),
			"turn_detection":   ref("XAITurnDetection"),
			"reasoning_effort": providerEnum(cat, catalog.LLM, "xai_realtime", "reasoning_effort"),
			"speed":            number().between(0.7, 1.5).def(1),
			"transcription": object(props{
				"language_hint": str(),
				"keyterms":      array(str().length(0, 50)).count(0, 100),
			}),
			"provider_tools": array(ref("XAIProviderTool")),
		}), "provider").titled("xAI Grok Realtime").
		d("Grok speaks itself: omit stt_config and tts_config. Call control: `end-call` and `transfer` work; `inject-context` and `say` are unreliable.")

	c["OpenAILiveConfig"] = object(merge(llmBase(cat, "openai_live", "OpenAI GPT-Live model."),
		props{
			"voice": ref("OpenAILiveVoice").d("Default `marin`."),
			"delegation": object(props{
				"model":        providerEnum(cat, catalog.LLM, "openai_live", "delegation", "model").def("gpt-5.6-luna"),
				"instructions": str().d("Defaults to the voice model's system prompt."),
			}).d("Backend model for reasoning and tool calls."),
		}), "provider").titled("OpenAI GPT-Live (realtime)")

	c["LLMConfig"] = tagged("provider", map[string]string{
		"openai": "OpenAILLMConfig", "xai": "XAILLMConfig", "mistral": "MistralLLMConfig", "google": "GoogleLLMConfig",
		"google_realtime": "GoogleRealtimeConfig", "xai_realtime": "XAIRealtimeConfig", "openai_live": "OpenAILiveConfig",
	}, "OpenAILLMConfig", "XAILLMConfig", "MistralLLMConfig", "GoogleLLMConfig", "GoogleRealtimeConfig", "XAIRealtimeConfig", "OpenAILiveConfig").
		d("Language model configuration, chosen by `provider`. `openai`, `xai`, `mistral` and `google` are text models that need stt_config and tts_config; `google_realtime`, `xai_realtime` and `openai_live` are speech-to-speech (tts_config null). Omitted `model` takes the provider's default.")
}
