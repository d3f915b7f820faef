package postcall

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/riverqueue/river"

	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/store"
)

// uploadArgs is the job that moves a call's recording from the disk of the
// node that ran the call into the object store. It runs in that node's own
// queue: only that node has the file.
type uploadArgs struct {
	OrgID  string `json:"org_id"`
	CallID string `json:"call_id"`
	File   string `json:"file"`
}

func (uploadArgs) Kind() string { return "postcall_upload" }

type uploadWorker struct {
	river.WorkerDefaults[uploadArgs]
	s *Service
}

func (w *uploadWorker) Timeout(*river.Job[uploadArgs]) time.Duration { return 5 * time.Minute }

func (w *uploadWorker) NextRetry(j *river.Job[uploadArgs]) time.Time {
	return w.s.now().Add(w.s.backoff(j.Attempt))
}

func (w *uploadWorker) Work(ctx context.Context, j *river.Job[uploadArgs]) error {
	s, a := w.s, j.Args
	log := s.log.With("call_id", a.CallID, "org_id", a.OrgID, "job", "postcall_upload", "attempt", j.Attempt)
	f, err := os.Open(a.File)
	if errors.Is(err, fs.ErrNotExist) {
		// Uploaded by an earlier run that died before recording it, or lost
		// with the disk: either way there is nothing left to upload.
		c, gerr := s.cfg.Store.GetCall(ctx, a.OrgID, a.CallID)
		if gerr == nil && c.RecordingState == store.RecordingReady {
			return nil
		}
		log.Error("recording file is gone; the call has no recording", "file", a.File)
		return s.finishRecording(ctx, a, store.RecordingFailed, nil)
	}
	if err != nil {
		return fmt.Errorf("open recording: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat recording: %w", err)
	}
	key := RecordingKey(a.OrgID, a.CallID)
	if err := s.cfg.Blobs.Put(ctx, key, f, st.Size(), "audio/wav"); err != nil {
		if j.Attempt >= j.MaxAttempts {
			log.Error("recording upload failed for good; the file stays on disk", "file", a.File, "error", err)
			return s.finishRecording(ctx, a, store.RecordingFailed, nil)
		}
		return fmt.Errorf("upload recording: %w", err)
	}
	if err := s.finishRecording(ctx, a, store.RecordingReady, &key); err != nil {
		return err
	}
	f.Close()
	if err := os.Remove(a.File); err != nil && !errors.Is(err, fs.ErrNotExist) {
		log.Warn("remove uploaded recording file", "file", a.File, "error", err)
	}
	log.Debug("recording uploaded", "key", key, "bytes", st.Size())
	return nil
}

func (s *Service) finishRecording(ctx context.Context, a uploadArgs, st store.RecordingState, key *string) error {
	err := s.cfg.Store.FinishRecording(ctx, a.OrgID, a.CallID, st, key, nil)
	if fault.KindOf(err) == fault.NotFound {
		return nil // the call (its organization) is gone
	}
	if err != nil {
		return fmt.Errorf("record the recording's state: %w", err)
	}
	return nil
}

// expiryArgs is the periodic job that deletes expired call content.
type expiryArgs struct{}

func (expiryArgs) Kind() string { return "postcall_expiry" }

type expiryWorker struct {
	river.WorkerDefaults[expiryArgs]
	s *Service
}

// expiryBatch is how many calls one pass clears before looking again.
const expiryBatch = 200

func (w *expiryWorker) Work(ctx context.Context, j *river.Job[expiryArgs]) error {
	s := w.s
	cleared := 0
	for {
		calls, err := s.cfg.Store.ExpiredContent(ctx, s.now(), expiryBatch)
		if err != nil {
			return err
		}
		for _, c := range calls {
			if c.RecordingKey != nil {
				if err := s.cfg.Blobs.Delete(ctx, *c.RecordingKey); err != nil {
					return fmt.Errorf("delete recording of call %s: %w", c.ID, err)
				}
			}
			if err := s.cfg.Store.ClearContent(ctx, c.OrgID, c.ID); err != nil && fault.KindOf(err) != fault.NotFound {
				return err
			}
			cleared++
		}
		if len(calls) < expiryBatch {
			break
		}
	}
	if cleared > 0 {
		s.log.Info("expired call content deleted", "calls", cleared)
	}
	return nil
}
