package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Writes that record what happened (a call's start and end, its transcript,
// its usage, its webhook events) must not be lost because whoever asked for
// them stopped waiting: a caller that hung up, a request that timed out.
// So every write transaction is detached from its caller's cancellation
// (context.WithoutCancel; values such as loggers still pass) and bounded by
// the store's own WriteTimeout instead. Once asked, a write commits or fails
// on its own merits, and its caller always learns which: there is no "maybe".
//
// On SQLite, where one connection does all the writing, write transactions
// are group-committed: a single committer goroutine takes every write waiting
// in its queue, runs each in its own SAVEPOINT inside one transaction (a
// failing write rolls back alone) and commits them together. A burst of a
// thousand call setups becomes a few dozen commits instead of a thousand
// turns of the connection. On PostgreSQL each write has its own transaction
// on the sized pool, and transient failures (deadlock, serialization) are
// retried.

// WriteTimeout bounds one write transaction (its queueing included) when
// Config.WriteTimeout is zero.
const WriteTimeout = 30 * time.Second

// maxBatch caps how many writes one group commit carries.
const maxBatch = 256

// writeReq is one write transaction waiting for the committer.
type writeReq struct {
	ctx    context.Context
	fn     func(ctx context.Context, tx *sql.Tx) error
	result chan error
}

// committer group-commits the writes of a single-connection database.
type committer struct {
	db       *sql.DB
	reqs     chan *writeReq
	quit     chan struct{}
	done     chan struct{}
	close    sync.Once
	prepared *preparedWrites
	// ctx bounds the committer's own work (preparing statements); it ends
	// with stop.
	ctx    context.Context
	cancel context.CancelFunc
}

func newCommitter(db *sql.DB) *committer {
	c := &committer{db: db, reqs: make(chan *writeReq, maxBatch), quit: make(chan struct{}), done: make(chan struct{}),
		prepared: &preparedWrites{m: map[string]*sql.Stmt{}, wanted: map[string]bool{}}}
	c.ctx, c.cancel = context.WithCancel(context.Background()) // the committer is its own root: DB.Close ends it
	go c.run()
	return c
}

// preparedWrites are the writer connection's prepared statements: SQLite
// otherwise parses every statement of every write (a tenth of the server's
// CPU under a burst of calls). A statement cannot be prepared inside a
// transaction on the single connection (preparing on the pool would wait
// for the connection the transaction holds), so a statement first runs
// unprepared and is prepared by the committer between transactions; from
// then on every transaction uses it (database/sql reuses a statement
// prepared on the transaction's connection).
type preparedWrites struct {
	mu     sync.Mutex
	m      map[string]*sql.Stmt
	wanted map[string]bool
}

// get returns query's prepared statement, or nil and asks for it.
func (p *preparedWrites) get(query string) *sql.Stmt {
	p.mu.Lock()
	defer p.mu.Unlock()
	if st := p.m[query]; st != nil {
		return st
	}
	p.wanted[query] = true
	return nil
}

// prepare prepares the statements asked for. It runs between transactions.
func (p *preparedWrites) prepare(ctx context.Context, db *sql.DB) {
	p.mu.Lock()
	var qs []string
	for q := range p.wanted {
		qs = append(qs, q)
	}
	clear(p.wanted)
	p.mu.Unlock()
	for _, q := range qs {
		// Briefly: the connection may be busy (the job queue shares it),
		// and batches wait meanwhile; a statement not prepared now is
		// asked for again the next time it runs.
		ctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		st, err := db.PrepareContext(ctx, q)
		cancel()
		if err != nil {
			continue // it keeps running unprepared
		}
		p.mu.Lock()
		if p.m[q] == nil {
			p.m[q] = st
		} else {
			st.Close()
		}
		p.mu.Unlock()
	}
}

func (p *preparedWrites) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, st := range p.m {
		st.Close()
	}
	clear(p.m)
}

// wtx is a write transaction whose statements use prepared statements
// when there are some (a querier).
type wtx struct {
	tx *sql.Tx
	p  *preparedWrites // nil: none
}

func (w wtx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := w.stmt(query); st != nil {
		return w.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return w.tx.ExecContext(ctx, query, args...)
}

func (w wtx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := w.stmt(query); st != nil {
		return w.tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return w.tx.QueryContext(ctx, query, args...)
}

func (w wtx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := w.stmt(query); st != nil {
		return w.tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return w.tx.QueryRowContext(ctx, query, args...)
}

func (w wtx) stmt(query string) *sql.Stmt {
	if w.p == nil {
		return nil
	}
	return w.p.get(query)
}

// w wraps a write transaction of this store.
func (db *DB) w(tx *sql.Tx) wtx {
	if db.commits == nil {
		return wtx{tx: tx} // PostgreSQL: pgx caches statements per connection itself
	}
	return wtx{tx: tx, p: db.commits.prepared}
}

// run is the committer's goroutine; stop ends it after the writes already
// queued are committed.
func (c *committer) run() {
	defer close(c.done)
	batch := make([]*writeReq, 0, maxBatch)
	for {
		select {
		case r := <-c.reqs:
			batch = append(batch[:0], r)
		case <-c.quit:
			for {
				select {
				case r := <-c.reqs:
					c.commit([]*writeReq{r})
				default:
					return
				}
			}
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case r := <-c.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		c.commit(batch)
		clear(batch)
		c.prepared.prepare(c.ctx, c.db)
	}
}

// stop commits what is queued and ends the committer.
func (c *committer) stop() {
	c.close.Do(func() { close(c.quit) })
	<-c.done
	c.cancel()
	c.prepared.close()
}

// commit runs a batch in one transaction, each write in its own savepoint.
// When the commit itself fails, the batch's successful writes are retried
// one transaction each, so one bad write never takes the others with it.
func (c *committer) commit(batch []*writeReq) {
	if len(batch) == 1 {
		r := batch[0]
		r.result <- runTx(r.ctx, c.db, r.fn)
		return
	}
	// The batch transaction lives as long as its longest write may.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(batch[0].ctx), WriteTimeout)
	defer cancel()
	errs := make([]error, len(batch))
	tx, err := c.db.BeginTx(ctx, nil)
	if err == nil {
		for i, r := range batch {
			errs[i] = savepoint(r.ctx, tx, r.fn)
		}
		err = tx.Commit()
	}
	if err != nil {
		if tx != nil {
			tx.Rollback()
		}
		for i, r := range batch {
			if errs[i] == nil {
				errs[i] = runTx(r.ctx, c.db, r.fn)
			}
		}
	}
	for i, r := range batch {
		r.result <- errs[i]
	}
}

// savepoint runs fn inside tx, rolling back only its own work when it fails.
func savepoint(ctx context.Context, tx *sql.Tx, fn func(context.Context, *sql.Tx) error) error {
	if _, err := tx.ExecContext(ctx, "SAVEPOINT w"); err != nil {
		return fmt.Errorf("begin write: %w", err)
	}
	if err := fn(ctx, tx); err != nil {
		if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT w"); rerr != nil {
			return errors.Join(err, fmt.Errorf("roll back write: %w", rerr))
		}
		tx.ExecContext(ctx, "RELEASE SAVEPOINT w")
		return err
	}
	if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT w"); err != nil {
		return fmt.Errorf("end write: %w", err)
	}
	return nil
}

// runTx runs fn in a transaction of its own and commits it when fn returns nil.
func runTx(ctx context.Context, db *sql.DB, fn func(context.Context, *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(ctx, tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// writeStats follows the write path's load, for admission control.
type writeStats struct {
	inflight atomic.Int64
	// ewmaMicros is the moving average of write latency (queueing included).
	ewmaMicros atomic.Int64
}

func (w *writeStats) observe(d time.Duration) {
	us := d.Microseconds()
	for {
		old := w.ewmaMicros.Load()
		next := old + (us-old)/8
		if w.ewmaMicros.CompareAndSwap(old, next) {
			return
		}
	}
}

// WriteLoad is how busy the write path is.
type WriteLoad struct {
	// InFlight is how many write transactions are queued or running.
	InFlight int
	// Latency is the moving average of recent writes' latency, from being
	// asked to being committed.
	Latency time.Duration
}

// WriteLoad reports how busy the write path is.
func (db *DB) WriteLoad() WriteLoad {
	return WriteLoad{InFlight: int(db.stats.inflight.Load()), Latency: time.Duration(db.stats.ewmaMicros.Load()) * time.Microsecond}
}

// tx runs fn in a write transaction and commits it when fn returns nil. The
// transaction is detached from ctx's cancellation and bounded by the store's
// write timeout; fn must use the context it is given.
func (db *DB) tx(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	return db.write1(ctx, func(ctx context.Context) error {
		if db.commits != nil {
			r := &writeReq{ctx: ctx, fn: fn, result: make(chan error, 1)}
			select {
			case db.commits.reqs <- r:
			case <-ctx.Done():
				return fmt.Errorf("queue write: %w", ctx.Err())
			}
			return <-r.result
		}
		return db.retry(ctx, func() error { return runTx(ctx, db.write, fn) })
	})
}

// exec runs one write statement on its own: group-committed on SQLite; on
// PostgreSQL in autocommit (one round trip instead of BEGIN, the statement
// and COMMIT), detached and retried like a transaction.
func (db *DB) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	var res sql.Result
	if db.commits != nil {
		err := db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
			var err error
			res, err = db.w(tx).ExecContext(ctx, query, args...)
			return err
		})
		return res, err
	}
	err := db.write1(ctx, func(ctx context.Context) error {
		return db.retry(ctx, func() error {
			var err error
			res, err = db.write.ExecContext(ctx, query, args...)
			return err
		})
	})
	return res, err
}

// write1 runs one write detached from ctx's cancellation, bounded by the
// write timeout, and counts it in the write load.
func (db *DB) write1(ctx context.Context, fn func(ctx context.Context) error) error {
	start := time.Now()
	db.stats.inflight.Add(1)
	defer func() {
		db.stats.inflight.Add(-1)
		db.stats.observe(time.Since(start))
	}()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), db.writeTimeout)
	defer cancel()
	return fn(ctx)
}

// retry runs fn again, with backoff, while it fails transiently (a deadlock
// or serialization failure; SQLite busy), at most five times in all.
func (db *DB) retry(ctx context.Context, fn func() error) error {
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil || attempt == 4 || !db.drv.IsTransient(err) {
			return err
		}
		select {
		case <-time.After(time.Duration(10<<attempt) * time.Millisecond):
		case <-ctx.Done():
			return err
		}
	}
}
