// Package jobs is Parley's durable background work: a River queue
// (riverqueue/river) kept in the store's own database, SQLite or PostgreSQL.
//
// Jobs are rows, inserted in the same transaction as the state change that
// calls for them (a call's end queues its post-call work), so a crash can
// neither lose a job nor run one for a change that never committed. Workers
// claim jobs with River's locking, so several nodes on one PostgreSQL share
// the work without doing anything twice; a job that fails is retried with
// backoff, one that is interrupted is run again (at least once).
//
// Each node runs its River client under a stable node id. A node that starts
// again after a crash first hands back the jobs its previous life was
// running (they would otherwise wait for River's stuck-job rescuer), and
// queues named for the node carry work only that node can do (a recording
// file on its disk waiting for upload).
//
// On SQLite the client shares the store's single writer connection: River
// recommends one connection for SQLite, and sharing it means the queue's
// writes and the store's never contend for the file lock. The driver has no
// LISTEN/NOTIFY, so the client polls for new jobs (every 200 ms by default).
package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"
)

// Config configures a Queue.
type Config struct {
	// Engine is the store's driver name: "sqlite" or "postgres".
	Engine string
	// DB is the store's writer pool (store.DB.Writer).
	DB *sql.DB
	// NodeID identifies this node among all nodes sharing the database; it
	// must be unique among running nodes and stable across restarts.
	NodeID string
	// Queues are the queues this node works, with their worker counts. A
	// node with none only inserts jobs.
	Queues map[string]int
	// Workers are the job kinds this node can run (required with Queues).
	Workers *river.Workers
	// Periodic jobs are inserted by whichever node is the leader.
	Periodic []*river.PeriodicJob
	// PollInterval is how often the client looks for new jobs (default 200 ms).
	PollInterval time.Duration
	// JobTimeout bounds one run of a job unless its worker says otherwise
	// (default 2 minutes).
	JobTimeout time.Duration
	// RescueAfter is how long a job may stay running before another node
	// takes it as abandoned (default JobTimeout + 1 minute).
	RescueAfter time.Duration
	Logger      *slog.Logger
}

// Queue is the job queue of one node.
type Queue struct {
	cfg    Config
	log    *slog.Logger
	client *river.Client[*sql.Tx]
}

// queueName is what River accepts as a queue name.
var queueName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// NodeQueue returns the name of a queue only the given node works, for jobs
// that need something on that node's disk.
func NodeQueue(prefix, nodeID string) string {
	id := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		}
		return '_'
	}, nodeID)
	name := prefix + "-" + id
	if len(name) > 63 {
		name = name[:63]
	}
	return name
}

// Open migrates River's tables, hands back the jobs this node was running
// when it last stopped without finishing them, and prepares the client.
// Start begins working.
func Open(ctx context.Context, cfg Config) (*Queue, error) {
	if cfg.DB == nil {
		return nil, errors.New("jobs: no database")
	}
	if cfg.NodeID == "" {
		return nil, errors.New("jobs: the node needs an id")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 200 * time.Millisecond
	}
	if cfg.JobTimeout <= 0 {
		cfg.JobTimeout = 2 * time.Minute
	}
	if cfg.RescueAfter <= cfg.JobTimeout {
		cfg.RescueAfter = cfg.JobTimeout + time.Minute
	}
	var driver riverdriver.Driver[*sql.Tx]
	switch cfg.Engine {
	case "sqlite":
		driver = riversqlite.New(cfg.DB)
	case "postgres":
		driver = riverdatabasesql.New(cfg.DB)
	default:
		return nil, fmt.Errorf("jobs: unknown database engine %q", cfg.Engine)
	}
	log := cfg.Logger
	mig, err := rivermigrate.New(driver, &rivermigrate.Config{Logger: quiet(log)})
	if err != nil {
		return nil, fmt.Errorf("jobs: migrator: %w", err)
	}
	res, err := mig.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return nil, fmt.Errorf("jobs: migrate the job tables: %w", err)
	}
	if len(res.Versions) > 0 {
		log.Info("job tables migrated", "versions", len(res.Versions))
	}

	queues := map[string]river.QueueConfig{}
	for name, n := range cfg.Queues {
		if !queueName.MatchString(name) {
			return nil, fmt.Errorf("jobs: queue name %q is not valid", name)
		}
		queues[name] = river.QueueConfig{MaxWorkers: max(1, n)}
	}
	rc := &river.Config{
		ID:                   cfg.NodeID,
		Logger:               quiet(log),
		PollOnly:             true,
		FetchPollInterval:    cfg.PollInterval,
		FetchCooldown:        min(cfg.PollInterval, 50*time.Millisecond),
		JobTimeout:           cfg.JobTimeout,
		RescueStuckJobsAfter: cfg.RescueAfter,
		PeriodicJobs:         cfg.Periodic,
		// Finished jobs are kept an hour (their results live on the call
		// rows; the billing job alone finishes every few seconds), failed
		// ones a week for inspection.
		CompletedJobRetentionPeriod: time.Hour,
		DiscardedJobRetentionPeriod: 7 * 24 * time.Hour,
	}
	if len(queues) > 0 {
		rc.Queues, rc.Workers = queues, cfg.Workers
	}
	client, err := river.NewClient(driver, rc)
	if err != nil {
		return nil, fmt.Errorf("jobs: client: %w", err)
	}
	q := &Queue{cfg: cfg, log: log, client: client}
	if len(queues) > 0 {
		if err := q.reclaim(ctx, driver); err != nil {
			return nil, err
		}
	}
	return q, nil
}

// quiet passes River's own records on from Warn up: its Info records (one
// per producer start, leadership changes) would drown the server's log.
func quiet(log *slog.Logger) *slog.Logger {
	return slog.New(levelFloor{log.Handler(), slog.LevelWarn})
}

type levelFloor struct {
	slog.Handler
	min slog.Level
}

func (h levelFloor) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h levelFloor) WithAttrs(as []slog.Attr) slog.Handler {
	return levelFloor{h.Handler.WithAttrs(as), h.min}
}

func (h levelFloor) WithGroup(name string) slog.Handler {
	return levelFloor{h.Handler.WithGroup(name), h.min}
}

// reclaim makes the jobs this node's previous run left running available
// again at once. Only this node's own jobs are touched: a job another node
// is running is that node's business (River's rescuer takes it over if that
// node is gone for good).
func (q *Queue) reclaim(ctx context.Context, driver riverdriver.Driver[*sql.Tx]) error {
	params := river.NewJobListParams().States(rivertype.JobStateRunning).First(1000)
	var ids []int64
	var errs [][]byte
	var sched []time.Time
	var fin []*time.Time
	var states []string
	now := time.Now().UTC()
	for {
		res, err := q.client.JobList(ctx, params)
		if err != nil {
			return fmt.Errorf("jobs: list running jobs: %w", err)
		}
		for _, j := range res.Jobs {
			if len(j.AttemptedBy) == 0 || j.AttemptedBy[len(j.AttemptedBy)-1] != q.cfg.NodeID {
				continue
			}
			ids = append(ids, j.ID)
			e := fmt.Appendf(nil, `{"at":%q,"attempt":%d,"error":"interrupted: node %s stopped while running the job","trace":""}`,
				now.Format(time.RFC3339Nano), j.Attempt, strings.ReplaceAll(q.cfg.NodeID, `"`, ""))
			errs, sched, fin, states = append(errs, e), append(sched, now), append(fin, nil), append(states, string(rivertype.JobStateAvailable))
		}
		if len(res.Jobs) == 0 || res.LastCursor == nil {
			break
		}
		params = params.After(res.LastCursor)
	}
	if len(ids) == 0 {
		return nil
	}
	_, err := driver.GetExecutor().JobRescueMany(ctx, &riverdriver.JobRescueManyParams{
		ID: ids, Error: errs, FinalizedAt: fin, ScheduledAt: sched, State: states, StuckHorizon: now.Add(time.Second),
	})
	if err != nil {
		return fmt.Errorf("jobs: hand back interrupted jobs: %w", err)
	}
	q.log.Warn("jobs interrupted by the last stop run again", "jobs", len(ids), "node_id", q.cfg.NodeID)
	return nil
}

// Start begins working the configured queues. Stop ends it.
func (q *Queue) Start(ctx context.Context) error {
	if len(q.cfg.Queues) == 0 {
		return nil
	}
	if err := q.client.Start(ctx); err != nil {
		return fmt.Errorf("jobs: start: %w", err)
	}
	return nil
}

// Stop lets running jobs finish for up to grace, then cancels them (an
// interrupted job runs again later, here or on another node) and waits for
// the client to stop.
func (q *Queue) Stop(ctx context.Context, grace time.Duration) error {
	if len(q.cfg.Queues) == 0 {
		return nil
	}
	soft, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	err := q.client.Stop(soft)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	hard, cancelHard := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancelHard()
	if err := q.client.StopAndCancel(hard); err != nil {
		return fmt.Errorf("jobs: stop: %w", err)
	}
	return nil
}

// InsertTx queues a job in the caller's transaction.
func (q *Queue) InsertTx(ctx context.Context, tx *sql.Tx, args river.JobArgs, opts *river.InsertOpts) error {
	if _, err := q.client.InsertTx(ctx, tx, args, opts); err != nil {
		return fmt.Errorf("queue %s job: %w", args.Kind(), err)
	}
	return nil
}

// Insert queues a job on its own.
func (q *Queue) Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) error {
	if _, err := q.client.Insert(ctx, args, opts); err != nil {
		return fmt.Errorf("queue %s job: %w", args.Kind(), err)
	}
	return nil
}

// Count returns how many jobs of the kinds are in the states (all kinds
// when kinds is empty); for tests, health and benchmarks.
func (q *Queue) Count(ctx context.Context, states []rivertype.JobState, kinds ...string) (int, error) {
	params := river.NewJobListParams().States(states...).First(10000)
	if len(kinds) > 0 {
		params = params.Kinds(kinds...)
	}
	n := 0
	for {
		res, err := q.client.JobList(ctx, params)
		if err != nil {
			return 0, fmt.Errorf("jobs: count: %w", err)
		}
		n += len(res.Jobs)
		if len(res.Jobs) == 0 || res.LastCursor == nil {
			return n, nil
		}
		params = params.After(res.LastCursor)
	}
}

// Pending is the set of unfinished states.
var Pending = []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStateRunning, rivertype.JobStateRetryable, rivertype.JobStateScheduled, rivertype.JobStatePending}

// Backoff is the delay before attempt n+1 of a job that failed attempt n:
// base, 4×base, 16×base, …, at most 10 minutes.
func Backoff(base time.Duration, attempt int) time.Duration {
	d := base
	for i := 1; i < attempt && d < 10*time.Minute; i++ {
		d *= 4
	}
	return min(d, 10*time.Minute)
}
