// Package admission decides, before anything is created, whether the server
// takes one more call. Past capacity a caller is better served by a prompt
// 503 with Retry-After (the carrier tries another route, or the caller
// again) than by a call that is set up late, half recorded or lost. Four
// limits, any of which refuses a setup:
//
//   - setups in flight: calls being routed and answered at once;
//   - setup rate: a token bucket of call setups per second (off unless set);
//   - the write path: the store's moving write latency (a call whose start
//     cannot be recorded promptly is not started);
//   - the CPU: the Go scheduler's latency, how long runnable goroutines
//     waited for a processor (runtime/metrics /sched/latencies:seconds),
//     p99 over each sampling window, the lower of the last two windows. When it is high, every live call's audio
//     is already late; one more call makes it worse for all of them.
//
// The refusal is counted by reason, so an operator can see which limit is
// binding.
package admission

import (
	"context"
	"log/slog"
	"math"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-voice/parley/internal/store"
)

// WriteLoader reports the store's write load.
type WriteLoader interface{ WriteLoad() store.WriteLoad }

// Config sets the limits. A zero limit is replaced by its default; a
// negative one turns that limit off.
type Config struct {
	// MaxSetups caps calls being set up at once (default 32: a deeper queue of setups waiting on the database only adds latency).
	MaxSetups int
	// MaxRate caps call setups per second (default off); Burst is the
	// bucket's size (default MaxRate/5, at least 1).
	MaxRate float64
	Burst   int
	// MaxWriteLatency refuses setups while the store's moving write
	// latency is above it (default 250 ms).
	MaxWriteLatency time.Duration
	// MaxSchedLatency refuses setups while the scheduler's p99 latency over
	// the last window is above it (default 50 ms).
	MaxSchedLatency time.Duration
	// Sample is the scheduler sampling window (default 200 ms).
	Sample time.Duration
	Store  WriteLoader
	Logger *slog.Logger
	Now    func() time.Time
}

// Reasons a setup is refused.
const (
	ReasonSetups = "setups_in_flight"
	ReasonRate   = "setup_rate"
	ReasonWrites = "write_latency"
	ReasonCPU    = "scheduler_latency"
)

// Controller applies the limits. Run samples the scheduler; Admit asks.
type Controller struct {
	cfg Config
	log *slog.Logger
	now func() time.Time

	inflight atomic.Int64
	schedNS  atomic.Int64 // p99 of the last window

	mu     sync.Mutex
	tokens float64
	last   time.Time

	refused sync.Map // reason → *atomic.Int64
}

// New builds a controller.
func New(cfg Config) *Controller {
	if cfg.MaxSetups == 0 {
		cfg.MaxSetups = 32
	}
	if cfg.MaxWriteLatency == 0 {
		cfg.MaxWriteLatency = 250 * time.Millisecond
	}
	if cfg.MaxSchedLatency == 0 {
		cfg.MaxSchedLatency = 50 * time.Millisecond
	}
	if cfg.Sample <= 0 {
		cfg.Sample = 200 * time.Millisecond
	}
	if cfg.Burst <= 0 {
		cfg.Burst = max(1, int(cfg.MaxRate/5))
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Controller{cfg: cfg, log: cfg.Logger, now: cfg.Now, tokens: float64(cfg.Burst)}
}

// Admit asks for one call setup. It returns a release func to call once the
// setup is over (answered or refused), or "" and the reason it is refused.
func (c *Controller) Admit() (release func(), reason string) {
	if n := c.inflight.Add(1); c.cfg.MaxSetups > 0 && n > int64(c.cfg.MaxSetups) {
		c.inflight.Add(-1)
		return nil, c.refuse(ReasonSetups)
	}
	why := ""
	switch {
	case c.cfg.MaxSchedLatency > 0 && time.Duration(c.schedNS.Load()) > c.cfg.MaxSchedLatency:
		why = ReasonCPU
	case c.cfg.MaxWriteLatency > 0 && c.cfg.Store != nil && c.cfg.Store.WriteLoad().Latency > c.cfg.MaxWriteLatency:
		why = ReasonWrites
	case c.cfg.MaxRate > 0 && !c.take():
		why = ReasonRate
	}
	if why != "" {
		c.inflight.Add(-1)
		return nil, c.refuse(why)
	}
	return sync.OnceFunc(func() { c.inflight.Add(-1) }), ""
}

// take takes a token from the setup-rate bucket.
func (c *Controller) take() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if !c.last.IsZero() {
		c.tokens = math.Min(float64(c.cfg.Burst), c.tokens+now.Sub(c.last).Seconds()*c.cfg.MaxRate)
	}
	c.last = now
	if c.tokens < 1 {
		return false
	}
	c.tokens--
	return true
}

func (c *Controller) refuse(reason string) string {
	v, _ := c.refused.LoadOrStore(reason, new(atomic.Int64))
	if n := v.(*atomic.Int64).Add(1); n == 1 || n%1000 == 0 {
		c.log.Warn("call setups refused: over capacity", "reason", reason, "refused", n,
			"sched_p99", time.Duration(c.schedNS.Load()), "setups_in_flight", c.inflight.Load())
	}
	return reason
}

// Refused returns how many setups each limit refused.
func (c *Controller) Refused() map[string]int64 {
	out := map[string]int64{}
	c.refused.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return out
}

// SchedLatency is the scheduler's p99 latency: the lower of the last two
// windows' figures.
func (c *Controller) SchedLatency() time.Duration { return time.Duration(c.schedNS.Load()) }

// Run samples the scheduler's latency until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	if c.cfg.MaxSchedLatency < 0 {
		return nil
	}
	const name = "/sched/latencies:seconds"
	sample := []metrics.Sample{{Name: name}}
	metrics.Read(sample)
	if sample[0].Value.Kind() != metrics.KindFloat64Histogram {
		c.log.Warn("scheduler latency is not available; the CPU limit is off")
		return nil
	}
	prev := cloneCounts(sample[0].Value.Float64Histogram())
	var last int64
	t := time.NewTicker(c.cfg.Sample)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		metrics.Read(sample)
		h := sample[0].Value.Float64Histogram()
		p99 := int64(quantile(h.Buckets, h.Counts, prev, 0.99) * 1e9)
		// The lower of the last two windows: one slow window (a GC
		// cycle, a burst of setups) refuses nothing; a saturated CPU
		// keeps both high.
		c.schedNS.Store(min(p99, last))
		last, prev = p99, cloneCounts(h)
	}
}

func cloneCounts(h *metrics.Float64Histogram) []uint64 { return append([]uint64(nil), h.Counts...) }

// quantile is the q-quantile (the bucket's upper bound) of the counts added
// since prev; 0 when nothing was added.
func quantile(buckets []float64, counts, prev []uint64, q float64) float64 {
	var total uint64
	for i := range counts {
		total += counts[i] - prev[i]
	}
	if total == 0 {
		return 0
	}
	want := uint64(math.Ceil(float64(total) * q))
	var seen uint64
	for i := range counts {
		seen += counts[i] - prev[i]
		if seen >= want {
			hi := buckets[i+1]
			if math.IsInf(hi, 1) {
				hi = buckets[i]
			}
			return hi
		}
	}
	return buckets[len(buckets)-1]
}
