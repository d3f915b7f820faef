package httpapi

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/parley-voice/parley/internal/blob"
	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/recording"
	"github.com/parley-voice/parley/internal/signedurl"
	"github.com/parley-voice/parley/internal/store"
)

// Recordings serves call recordings: where they are kept, and the signer of
// the links that reach them without an API key.
type Recordings struct {
	Files blob.Store
	Links signedurl.Signer
	// LinkTTL is how long a recording_url works (default 24 hours).
	LinkTTL time.Duration
}

var (
	errLinkExpired = &fault.Error{Kind: fault.Unauthorized, Code: "link_expired",
		Message: "This recording link has expired: read the call again (GET /api/v1/calls/{id}) for a fresh recording_url, or send your API key"}
	errLinkInvalid = &fault.Error{Kind: fault.Unauthorized, Code: "invalid_signature",
		Message: "This recording link's signature is not valid: use the recording_url exactly as Parley gave it, or send your API key"}
)

// recordingURL is a fresh signed link to a call's recording, or nil when the
// call has none (yet).
func (s *Server) recordingURL(c *store.Call) *string {
	if c.RecordingState != store.RecordingReady || s.rec == nil {
		return nil
	}
	u := recording.Link(s.rec.Links, c.OrgID, c.ID, s.rec.LinkTTL)
	return &u
}

// signedOrKey lets a request in with a valid signed link (recording_url) or,
// without one, with an API key like every other route.
func (s *Server) signedOrKey(next http.Handler) http.Handler {
	withKey := s.authenticate(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if !signedurl.Signed(q) || r.Header.Get("Authorization") != "" {
			withKey.ServeHTTP(w, r)
			return
		}
		id, err := pathID(r, "id")
		if err != nil {
			writeError(w, r, err)
			return
		}
		if s.rec == nil {
			writeError(w, r, errLinkInvalid)
			return
		}
		switch err := s.rec.Links.Check(recording.Path(id), q); {
		case errors.Is(err, signedurl.ErrExpired):
			writeError(w, r, errLinkExpired)
			return
		case err != nil:
			writeError(w, r, errLinkInvalid)
			return
		}
		ctx := context.WithValue(context.WithValue(r.Context(), orgKey, q.Get(recording.LinkOrgParam)), loggerKey, s.log)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// getRecording answers a call's recording: a two-channel WAV (caller left,
// assistant right), with Range support.
func (s *Server) getRecording(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	c, err := s.db.GetCall(r.Context(), orgID(r), id)
	if err != nil {
		return err
	}
	if s.rec == nil || c.RecordingKey == nil || c.RecordingState != store.RecordingReady {
		msg := "call " + id + " has no recording"
		if c.RecordingState == store.RecordingPending {
			msg = "call " + id + "'s recording is still being stored; try again in a moment"
		}
		return fault.NotFoundf("%s", msg)
	}
	obj, err := s.rec.Files.Open(r.Context(), *c.RecordingKey)
	if errors.Is(err, blob.ErrNotFound) {
		return fault.NotFoundf("call %s's recording is gone (deleted by retention?)", id)
	}
	if err != nil {
		return err
	}
	defer obj.Close()
	w.Header().Set("Content-Type", "audio/wav")
	w.Header().Set("Content-Disposition", `inline; filename="`+url.PathEscape(id)+`.wav"`)
	w.Header().Set("Cache-Control", "private, no-store")
	http.ServeContent(w, r, "", obj.ModTime(), obj)
	return nil
}
