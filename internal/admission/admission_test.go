package admission

import (
	"context"
	"math"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/parley-voice/parley/internal/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type load struct{ l store.WriteLoad }

func (f *load) WriteLoad() store.WriteLoad { return f.l }

func TestSetupsInFlight(t *testing.T) {
	c := New(Config{MaxSetups: 2, MaxSchedLatency: -1, MaxWriteLatency: -1})
	r1, why := c.Admit()
	r2, why2 := c.Admit()
	if why != "" || why2 != "" {
		t.Fatalf("first two refused: %q %q", why, why2)
	}
	if _, why := c.Admit(); why != ReasonSetups {
		t.Fatalf("third = %q, want %q", why, ReasonSetups)
	}
	r1()
	r1() // idempotent
	if r3, why := c.Admit(); why != "" {
		t.Fatalf("after a release: %q", why)
	} else {
		r3()
	}
	r2()
	if got := c.Refused()[ReasonSetups]; got != 1 {
		t.Fatalf("refused count %d", got)
	}
}

func TestSetupRate(t *testing.T) {
	now := time.Unix(1000, 0)
	c := New(Config{MaxRate: 10, Burst: 2, MaxSchedLatency: -1, MaxWriteLatency: -1, Now: func() time.Time { return now }})
	admitted := 0
	for range 5 {
		if r, why := c.Admit(); why == "" {
			admitted++
			r()
		}
	}
	if admitted != 2 {
		t.Fatalf("burst: %d admitted, want 2", admitted)
	}
	now = now.Add(100 * time.Millisecond) // one token at 10/s
	r, why := c.Admit()
	if why != "" {
		t.Fatalf("after 100 ms: %q", why)
	}
	r()
	if _, why := c.Admit(); why != ReasonRate {
		t.Fatalf("bucket empty: %q", why)
	}
	// Over a simulated second at 50 offers per second, about 10 pass.
	admitted = 0
	for range 50 {
		now = now.Add(20 * time.Millisecond)
		if r, why := c.Admit(); why == "" {
			admitted++
			r()
		}
	}
	if admitted < 9 || admitted > 11 {
		t.Fatalf("%d admitted in a second at 10/s", admitted)
	}
}

func TestWriteLatency(t *testing.T) {
	f := &load{}
	c := New(Config{Store: f, MaxSchedLatency: -1})
	if r, why := c.Admit(); why != "" {
		t.Fatalf("idle store: %q", why)
	} else {
		r()
	}
	f.l.Latency = 400 * time.Millisecond
	if _, why := c.Admit(); why != ReasonWrites {
		t.Fatalf("slow store: %q", why)
	}
	f.l.Latency = 10 * time.Millisecond
	if r, why := c.Admit(); why != "" {
		t.Fatalf("recovered store: %q", why)
	} else {
		r()
	}
}

func TestQuantile(t *testing.T) {
	buckets := []float64{0, 0.001, 0.01, 0.1, math.Inf(1)}
	prev := []uint64{5, 5, 5, 5}
	for _, tc := range []struct {
		counts []uint64
		q      float64
		want   float64
	}{
		{[]uint64{5, 5, 5, 5}, 0.99, 0},           // nothing new
		{[]uint64{105, 5, 5, 5}, 0.99, 0.001},     // all under 1 ms
		{[]uint64{103, 5, 5, 7}, 0.99, 0.1},       // 2 % beyond 100 ms: the top bucket's lower bound
		{[]uint64{6, 5, 104, 5}, 0.99, 0.1},       // 99 % in (10 ms, 100 ms]
		{[]uint64{55, 55, 5, 5}, 0.5, 0.001},      // median in the first bucket
		{[]uint64{5, 105, 5, 5}, 0.99, 0.01},      // all in (1 ms, 10 ms]
		{[]uint64{5, 5, 5, 6}, 0.99, 0.1},         // one sample beyond the last bound
		{[]uint64{1005, 5, 7, 5}, 0.999, 0.1},     // the tail counts
		{[]uint64{1005, 5, 7, 5}, 0.99, 0.001},    // ...but not at p99
		{[]uint64{5, 5, 5, 5 + 1000}, 0.5, 0.1},   // everything in the open bucket
		{[]uint64{5 + 10, 5, 5, 5}, 1.0, 0.001},   // q = 1
		{[]uint64{5, 5 + 3, 5 + 1, 5}, 0.7, 0.01}, // 3 of 4 within 10 ms
	} {
		if got := quantile(buckets, tc.counts, prev, tc.q); got != tc.want {
			t.Errorf("quantile(%v, %v) = %v, want %v", tc.counts, tc.q, got, tc.want)
		}
	}
}

// TestSchedulerLatency: with the processors saturated by busy goroutines,
// the sampled scheduler latency rises and setups are refused; once the
// load is gone they are admitted again.
func TestSchedulerLatency(t *testing.T) {
	c := New(Config{MaxSchedLatency: 5 * time.Millisecond, MaxWriteLatency: -1, Sample: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 * runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					spin()
				}
			}
		}()
	}
	refused := false
	deadline := time.Now().Add(10 * time.Second)
	for !refused && time.Now().Before(deadline) {
		if r, why := c.Admit(); why == ReasonCPU {
			refused = true
		} else if why == "" {
			r()
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if !refused {
		t.Fatalf("saturated processors never refused a setup (scheduler p99 %s)", c.SchedLatency())
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		r, why := c.Admit()
		if why == "" {
			r()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still refusing after the load ended: %q (p99 %s)", why, c.SchedLatency())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

//go:noinline
func spin() {
	x := 0
	for i := range 1_000_000 {
		x += i
	}
	_ = x
}
