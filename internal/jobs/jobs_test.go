package jobs_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"
	"go.uber.org/goleak"

	"github.com/parley-voice/parley/internal/jobs"
	"github.com/parley-voice/parley/internal/store"
	"github.com/parley-voice/parley/internal/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type engine struct {
	name string
	open func(t testing.TB) *store.DB
}

var engines = []engine{{"sqlite", storetest.OpenSQLite}, {"postgres", storetest.OpenPostgres}}

type pingArgs struct {
	N int `json:"n"`
}

func (pingArgs) Kind() string { return "ping" }

type pingWorker struct {
	river.WorkerDefaults[pingArgs]
	mu   sync.Mutex
	seen []int
	runs atomic.Int32
}

func (w *pingWorker) Work(ctx context.Context, j *river.Job[pingArgs]) error {
	w.runs.Add(1)
	w.mu.Lock()
	w.seen = append(w.seen, j.Args.N)
	w.mu.Unlock()
	return nil
}

func (w *pingWorker) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.seen)
}

func open(t *testing.T, db *store.DB, node string, w river.Worker[pingArgs]) *jobs.Queue {
	t.Helper()
	workers := river.NewWorkers()
	river.AddWorker(workers, w)
	q, err := jobs.Open(context.Background(), jobs.Config{Engine: db.Driver(), DB: db.Writer(), NodeID: node,
		Queues: map[string]int{"work": 2}, Workers: workers, PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A job queued in a store transaction runs once the transaction commits,
// and not at all when it rolls back.
func TestInsertInTransaction(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			db := e.open(t)
			w := &pingWorker{}
			q := open(t, db, "node-a", w)
			ctx := context.Background()
			if err := q.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer q.Stop(ctx, 5*time.Second)

			tx, err := db.Writer().BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := q.InsertTx(ctx, tx, pingArgs{N: 1}, &river.InsertOpts{Queue: "work"}); err != nil {
				t.Fatal(err)
			}
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
			tx, err = db.Writer().BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := q.InsertTx(ctx, tx, pingArgs{N: 2}, &river.InsertOpts{Queue: "work"}); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 5*time.Second, "the committed job", func() bool { return w.count() == 1 })
			time.Sleep(100 * time.Millisecond)
			w.mu.Lock()
			defer w.mu.Unlock()
			if len(w.seen) != 1 || w.seen[0] != 2 {
				t.Fatalf("worked %v, want only the committed job [2]", w.seen)
			}
		})
	}
}

// claimAs leaves jobs running under a node id, as a node killed in the middle
// of them does.
func claimAs(t *testing.T, db *store.DB, node string) int {
	t.Helper()
	var exec riverdriver.Executor
	if db.Driver() == "sqlite" {
		exec = riversqlite.New(db.Writer()).GetExecutor()
	} else {
		exec = riverdatabasesql.New(db.Writer()).GetExecutor()
	}
	now := time.Now().UTC()
	got, err := exec.JobGetAvailable(context.Background(), &riverdriver.JobGetAvailableParams{
		ClientID: node, Queue: "work", MaxToLock: 10, MaxAttemptedBy: 100, Now: &now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return len(got.Jobs)
}

// Jobs a node was running when it died are run again as soon as the node
// starts again, without waiting for the stuck-job rescuer; jobs another node
// is running are left alone.
func TestRestartedNodeTakesBackItsJobs(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			db := e.open(t)
			ctx := context.Background()
			// An insert-only queue puts jobs in; "node-a" and "node-b" each
			// claim some and die.
			ins, err := jobs.Open(ctx, jobs.Config{Engine: db.Driver(), DB: db.Writer(), NodeID: "inserter"})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				if err := ins.Insert(ctx, pingArgs{N: i}, &river.InsertOpts{Queue: "work"}); err != nil {
					t.Fatal(err)
				}
			}
			if n := claimAs(t, db, "node-a"); n != 3 {
				t.Fatalf("node-a claimed %d jobs, want 3", n)
			}
			if err := ins.Insert(ctx, pingArgs{N: 10}, &river.InsertOpts{Queue: "work"}); err != nil {
				t.Fatal(err)
			}
			if n := claimAs(t, db, "node-b"); n != 1 {
				t.Fatalf("node-b claimed %d jobs, want 1", n)
			}

			w := &pingWorker{}
			q := open(t, db, "node-a", w)
			if err := q.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer q.Stop(ctx, 5*time.Second)
			waitFor(t, 5*time.Second, "node-a's three jobs to run again", func() bool { return w.count() == 3 })
			time.Sleep(200 * time.Millisecond)
			if n := w.count(); n != 3 {
				t.Fatalf("ran %d jobs; node-b's job must be left to node-b", n)
			}
			// node-a's jobs complete (River records completions in the
			// background); node-b's stays running.
			waitFor(t, 5*time.Second, "only node-b's job left running", func() bool {
				running, err := q.Count(ctx, []rivertype.JobState{rivertype.JobStateRunning})
				return err == nil && running == 1
			})
		})
	}
}

// Stop lets a running job finish within the grace period, and cancels it
// after.
func TestStopCancelsAfterGrace(t *testing.T) {
	db := storetest.OpenSQLite(t)
	w := &blockingWorker{started: make(chan struct{})}
	workers := river.NewWorkers()
	river.AddWorker(workers, w)
	ctx := context.Background()
	q, err := jobs.Open(ctx, jobs.Config{Engine: "sqlite", DB: db.Writer(), NodeID: "n", Queues: map[string]int{"work": 1}, Workers: workers, PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := q.Insert(ctx, pingArgs{}, &river.InsertOpts{Queue: "work"}); err != nil {
		t.Fatal(err)
	}
	<-w.started
	start := time.Now()
	if err := q.Stop(ctx, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(w.err, context.Canceled) {
		t.Fatalf("blocked job ended with %v, want its context cancelled", w.err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("stop took %v", d)
	}
}

type blockingWorker struct {
	river.WorkerDefaults[pingArgs]
	started chan struct{}
	err     error
}

func (w *blockingWorker) Work(ctx context.Context, j *river.Job[pingArgs]) error {
	close(w.started)
	<-ctx.Done()
	w.err = ctx.Err()
	return river.JobSnooze(0)
}

func TestBackoff(t *testing.T) {
	for attempt, want := range map[int]time.Duration{1: 5 * time.Second, 2: 20 * time.Second, 3: 80 * time.Second, 5: 10 * time.Minute, 40: 10 * time.Minute} {
		if got := jobs.Backoff(5*time.Second, attempt); got != want {
			t.Errorf("attempt %d: %v, want %v", attempt, got, want)
		}
	}
}
