package main

import (
	"context"
	"fmt"
	"github.com/parley-voice/parley/internal/domain"
	"log/slog"
	"maps"
	"path/filepath"

	"github.com/riverqueue/river"

	"github.com/parley-voice/parley/internal/billing"
	"github.com/parley-voice/parley/internal/blob"
	"github.com/parley-voice/parley/internal/blob/s3"
	"github.com/parley-voice/parley/internal/httpapi"
	"github.com/parley-voice/parley/internal/jobs"
	"github.com/parley-voice/parley/internal/postcall"
	"github.com/parley-voice/parley/internal/recording"
	"github.com/parley-voice/parley/internal/retention"
	"github.com/parley-voice/parley/internal/secret"
	"github.com/parley-voice/parley/internal/signedurl"
	"github.com/parley-voice/parley/internal/store"
)

// afterCall is the work done after calls: the post-call jobs, the retention
// and billing jobs, the job queue they run in, and where recordings are kept.
type afterCall struct {
	post  *postcall.Service
	queue *jobs.Queue
	rec   *httpapi.Recordings
}

// openBlobs opens the object store for recordings: the S3 bucket when one is
// set, else the recordings directory.
func openBlobs(ctx context.Context, c *config) (blob.Store, error) {
	if c.S3.Endpoint == "" {
		return blob.NewDir(c.RecordingsDir)
	}
	st, err := s3.New(s3.Config{
		Endpoint: c.S3.Endpoint, Secure: !c.S3.Insecure, Region: c.S3.Region, Bucket: c.S3.Bucket, Prefix: c.S3.Prefix,
		AccessKeyID: c.S3.AccessKeyID, SecretAccessKey: c.S3.SecretAccessKey,
	})
	if err != nil {
		return nil, err
	}
	if err := st.CheckBucket(ctx); err != nil {
		return nil, err
	}
	return st, nil
}

// newAfterCall builds the post-call service and opens the job queue with its
// workers. Attach the engine (its models) with attach before starting.
func newAfterCall(ctx context.Context, c *config, db *store.DB, keys *secret.Keyring, domains *domain.Service, outbox postcall.Notifier, log *slog.Logger) (*afterCall, error) {
	// Spools of recordings a crash interrupted are useless; finished
	// recordings (done/) wait for their upload jobs and stay.
	if err := recording.CleanSpool(filepath.Join(c.SpoolDir, "recordings")); err != nil {
		return nil, fmt.Errorf("clean the recording spool: %w", err)
	}
	blobs, err := openBlobs(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("open recording storage: %w", err)
	}
	links := signedurl.Signer{Base: c.PublicURL, Keys: keys}
	notifier, err := newNotifier(c, db, domains, links, log)
	if err != nil {
		return nil, fmt.Errorf("notification e-mails: %w", err)
	}
	post := postcall.New(postcall.Config{
		NodeID: c.NodeID, Store: db, Blobs: blobs, Links: links, LinkTTL: c.RecordingURLTTL, Outbox: outbox, Followups: []postcall.Followup{notifier},
		ModelConcurrency: c.PostcallConcurrency, ModelTimeout: c.PostcallTimeout, Logger: log.With("component", "postcall"),
	})
	ret := retention.New(retention.Config{Store: db, Blobs: blobs, Interval: c.RetentionInterval, Logger: log.With("component", "retention")})
	bill := billing.New(billing.Config{Store: db, Logger: log.With("component", "billing")})
	workers := river.NewWorkers()
	queues := map[string]int{}
	var periodic []*river.PeriodicJob
	for _, svc := range []interface {
		Register(*river.Workers)
		Queues() map[string]int
		Periodic() []*river.PeriodicJob
	}{post, ret, bill, notifier} {
		svc.Register(workers)
		maps.Copy(queues, svc.Queues())
		periodic = append(periodic, svc.Periodic()...)
	}
	q, err := jobs.Open(ctx, jobs.Config{
		Engine: db.Driver(), DB: db.Writer(), NodeID: c.NodeID, Queues: queues, Workers: workers,
		Periodic: periodic, Logger: log.With("component", "jobs"),
	})
	if err != nil {
		return nil, err
	}
	notifier.Attach(q)
	return &afterCall{post: post, queue: q, rec: &httpapi.Recordings{Files: blobs, Links: links, LinkTTL: c.RecordingURLTTL}}, nil
}
