package openapi

// This file describes the speech-to-text and text-to-speech configurations
// (spec §8.1, §8.3, §10) and the closed voice and language lists, plus
// Parley's key-less "local" provider (PocketSphinx STT, eSpeak NG TTS).
// Models, voices, languages and fixed-value settings come from the catalog.

import "github.com/parley-voice/parley/internal/catalog"

// models is a model enum whose first value is the default; legacy models
// are accepted but named in the description only as such.
func models(desc string, ids ...string) *schema {
	return enum(ids...).def(ids[0]).d(desc)
}

// sttBase are the members every STT provider accepts.
func sttBase(cat *catalog.Catalog, provider, modelDesc string) props {
	m := catalogModels(cat, catalog.STT, provider, modelDesc)
	return props{
		"provider": constant(provider),
		"model":    m,
		"language": ref("STTLanguage").d("Language spoken by the caller; `multi` detects Dutch and English. Default `en`."),
		"keyterms": array(str()).d("Words and names to recognise more reliably."),
	}
}

func providerSchemas(c map[string]*schema, cat *catalog.Catalog) {
	c["STTLanguage"] = enum(cat.Languages()...).d("STT language (spec §10.4); `multi` means Dutch and English with automatic detection.")
	c["GoogleVoice"] = enum(voiceIDs(cat, "google")...).d("Google Gemini voice (Gemini TTS voice_id and Gemini Live voice).")
	c["XAIVoice"] = enum(voiceIDs(cat, "xai")...).d("xAI voice (Grok TTS voice_id and Grok Realtime voice).")
	c["OpenAILiveVoice"] = enum(voiceIDs(cat, "openai_live")...).d("OpenAI GPT-Live voice.")
	c["BYOKProvider"] = enum(cat.BYOKProviders()...).d("Provider a BYOK key is stored for. `google` is a Gemini API key (AI Studio); `google_vertex` a Vertex AI service account (EU regions).")

	// Speech-to-text (spec §8.1).
	c["DeepgramSTTConfig"] = object(merge(sttBase(cat, "deepgram", "Deepgram model; `nova-2` is legacy (accepted, not offered)."), props{
		"smart_format":     boolean(),
		"endpointing":      integer().between(0, 5000).d("Silence in milliseconds that ends an utterance."),
		"numerals":         boolean(),
		"filler_words":     boolean(),
		"utterance_end_ms": integer().between(1000, 5000),
		"no_delay":         boolean(),
	}), "provider").titled("Deepgram")
	c["ElevenLabsSTTConfig"] = object(merge(sttBase(cat, "elevenlabs", "ElevenLabs Scribe model."), props{
		"tag_audio_events":   boolean(),
		"include_timestamps": boolean(),
		"sample_rate":        intEnum(16000, 8000),
	}), "provider").titled("ElevenLabs Scribe")
	c["GladiaSTTConfig"] = object(merge(sttBase(cat, "gladia", "Gladia model."), props{
		"languages":                    array(str()).d("Languages to expect when code switching."),
		"code_switching":               boolean(),
		"region":                       providerEnum(cat, catalog.STT, "gladia", "region"),
		"endpointing":                  number().between(0.01, 1).d("Silence in seconds that ends an utterance."),
		"custom_vocabulary":            array(str()),
		"translation_enabled":          boolean(),
		"translation_target_languages": array(str()),
	}), "provider").titled("Gladia")
	c["MistralSTTConfig"] = object(sttBase(cat, "mistral", "Mistral Voxtral model."), "provider").titled("Mistral Voxtral")
	c["GoogleSTTConfig"] = object(sttBase(cat, "google", "Google Cloud Speech model (Vertex location `eu`)."), "provider").titled("Google Cloud Speech")
	local := sttBase(cat, "local", "PocketSphinx, running on the Parley server; no provider key needed.")
	localLangs := providerLanguages(cat, "local")
	local["language"] = enum(localLangs...).def(localLangs[0]).d("The languages the local recogniser understands.")
	c["LocalSTTConfig"] = object(local, "provider").titled("Local (Parley)").
		d("Parley-only provider: offline speech recognition with PocketSphinx on the server itself.")
	c["STTConfig"] = tagged("provider", map[string]string{
		"deepgram": "DeepgramSTTConfig", "elevenlabs": "ElevenLabsSTTConfig", "gladia": "GladiaSTTConfig",
		"mistral": "MistralSTTConfig", "google": "GoogleSTTConfig", "local": "LocalSTTConfig",
	}, "DeepgramSTTConfig", "ElevenLabsSTTConfig", "GladiaSTTConfig", "MistralSTTConfig", "GoogleSTTConfig", "LocalSTTConfig").
		d("Speech-to-text configuration, chosen by `provider`. Omitted `model` and `language` take the provider's defaults. Not used by realtime (speech-to-speech) assistants.")

	// Text-to-speech (spec §8.3).
	el := props{
		"provider":                          enum(providerIDsWithAliases(cat, catalog.TTS, "elevenlabs")...).d("`11labs` is an alias of `elevenlabs`."),
		"voice_id":                          str().length(1, -1).d("Any ElevenLabs voice id, e.g. `ukiwGs47sHyibruHJ1vg`."),
		"model":                             catalogModels(cat, catalog.TTS, "elevenlabs", "`eleven_flash_v2_5` is fastest; `eleven_v3` is expressive and understands `[emotion]` audio tags."),
		"stability":                         number().between(0, 1),
		"similarity_boost":                  number().between(0, 1),
		"style":                             number().between(0, 1),
		"use_speaker_boost":                 boolean(),
		"speed":                             number().between(0.5, 2),
		"apply_text_normalization":          providerEnum(cat, catalog.TTS, "elevenlabs", "apply_text_normalization"),
		"apply_language_text_normalization": boolean(),
		"language":                          str().d("Language code, e.g. `nl`."),
	}
	c["ElevenLabsTTSConfig"] = object(el, "provider", "voice_id").titled("ElevenLabs")
	c["InworldTTSConfig"] = object(props{
		"provider": constant("inworld"),
		"voice_id": str().length(1, -1).d("Any Inworld voice id."),
		"model":    catalogModels(cat, catalog.TTS, "inworld", "Inworld model; `inworld-tts-1.5-max` and `inworld-tts-1.5-mini` are legacy (accepted, not offered)."),
		"language": str(),
		"speed":    number().between(0.5, 2),
	}, "provider", "voice_id").titled("Inworld")
	c["GoogleTTSConfig"] = object(props{
		"provider":      constant("google"),
		"voice_id":      ref("GoogleVoice").d("Default `Kore`."),
		"model":         catalogModels(cat, catalog.TTS, "google", "Gemini TTS models need a `google` key, `chirp-3-hd` a `google_vertex` key."),
		"instructions":  str().d("Style prompt (Gemini TTS)."),
		"language":      str(),
		"speaking_rate": number().between(0.25, 2).def(1).d("Chirp 3 HD only."),
	}, "provider").titled("Google (Gemini TTS, Chirp 3 HD)")
	c["XAITTSConfig"] = object(props{
		"provider": constant("xai"),
		"voice_id": ref("XAIVoice").d("Default `ara`."),
		"language": str(),
	}, "provider").titled("xAI Grok TTS").d("Grok TTS has no model choice.")
	c["OpenAITTSConfig"] = object(props{
		"provider":     constant("openai"),
		"voice_id":     str().length(1, 64).def("alloy").d("alloy, ash, ballad, cedar, coral, echo, fable, marin, nova, onyx, sage, shimmer or verse; an OpenAI-compatible server may have others."),
		"model":        catalogModels(cat, catalog.TTS, "openai", "OpenAI speech model."),
		"instructions": str().d("How to speak (`gpt-4o-mini-tts` only)."),
		"speed":        number().between(0.25, 4),
	}, "provider").titled("OpenAI TTS").d("From older HMS docs; Parley serves it (`POST /audio/speech` at the OpenAI base URL).")
	c["LocalTTSConfig"] = object(props{
		"provider": constant("local"),
		"voice_id": str().length(1, 64).def("en-us").d("Any eSpeak NG voice, e.g. `en-us` or `nl`."),
		"model":    catalogModels(cat, catalog.TTS, "local", "eSpeak NG, running on the Parley server; no provider key needed."),
		"speed":    number().between(0.5, 2),
	}, "provider").titled("Local (Parley)").d("Parley-only provider: offline speech synthesis with eSpeak NG on the server itself.")
	c["TTSConfig"] = tagged("provider", map[string]string{
		"elevenlabs": "ElevenLabsTTSConfig", "11labs": "ElevenLabsTTSConfig", "inworld": "InworldTTSConfig",
		"google": "GoogleTTSConfig", "xai": "XAITTSConfig", "openai": "OpenAITTSConfig", "local": "LocalTTSConfig",
	}, "ElevenLabsTTSConfig", "InworldTTSConfig", "GoogleTTSConfig", "XAITTSConfig", "OpenAITTSConfig", "LocalTTSConfig").
		d("Text-to-speech configuration, chosen by `provider`. Omitted `model` takes the provider's default. Null for realtime (speech-to-speech) assistants.")
}
