// Command apibench measures the control plane under a mixed workload: several
// organizations, 90 % reads and 10 % writes, over real HTTP on loopback against
// a real database (SQLite by default, PostgreSQL with -postgres).
//
//	go run ./cmd/apibench -duration 20s -concurrency 32
//	go run ./cmd/apibench -postgres postgres://parley@127.0.0.1:5432/bench
//
// It prints requests per second, latency percentiles and the error count. It is
// a development harness, not part of the server binary; the server it starts
// is the same httpapi.Server that `parley serve` runs.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/parley-voice/parley/internal/apikey"
	"github.com/parley-voice/parley/internal/assistant"
	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/catalog"
	"github.com/parley-voice/parley/internal/httpapi"
	"github.com/parley-voice/parley/internal/secret"
	"github.com/parley-voice/parley/internal/store"
	"github.com/parley-voice/parley/internal/store/postgres"
	"github.com/parley-voice/parley/internal/store/sqlite"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "apibench:", err)
		os.Exit(1)
	}
}

type org struct {
	key        string
	assistants []string
	calls      []string
}

func run() error {
	duration := flag.Duration("duration", 20*time.Second, "how long to send load")
	concurrency := flag.Int("concurrency", 32, "concurrent clients")
	orgs := flag.Int("orgs", 10, "organizations")
	pgURL := flag.String("postgres", "", "PostgreSQL URL (default: SQLite in a temporary directory)")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the load phase to this file")
	flag.Parse()
	ctx := context.Background()

	var db *store.DB
	var err error
	engine := "sqlite"
	if *pgURL != "" {
		engine = "postgres"
		db, err = postgres.Open(ctx, postgres.Config{URL: *pgURL, MaxConns: 32})
	} else {
		dir, _ := os.MkdirTemp("", "apibench")
		defer os.RemoveAll(dir)
		db, err = sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dir, "bench.db")})
	}
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		return err
	}
	master := make([]byte, 32)
	keys, _ := secret.NewKeyring(master)
	cat, err := catalog.Load()
	if err != nil {
		return err
	}
	api := httpapi.NewServer(httpapi.Config{RateLimit: 1 << 30}, httpapi.Deps{Store: db, Keyring: keys, Catalog: cat, Validator: assistant.NewValidator(cat)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: api}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String() + "/api/v1"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *concurrency * 2, MaxConnsPerHost: *concurrency * 2}}

	// Seed: per organization 20 assistants, 5 numbers, 200 calls.
	fmt.Printf("seeding %d organizations on %s…\n", *orgs, engine)
	var all []*org
	for i := 0; i < *orgs; i++ {
		k := apikey.Generate()
		id := apikey.Derive(keys, k)
		o := &store.Org{Name: fmt.Sprintf("Org %d", i)}
		if err := db.CreateOrg(ctx, o, &store.APIKey{ID: id.ID, Hash: id.Hash, Prefix: id.Prefix}); err != nil {
			return err
		}
		bo := &org{key: k}
		for j := 0; j < 20; j++ {
			var out struct {
				Assistant struct{ ID string } `json:"assistant"`
			}
			if err := send(client, "POST", base+"/assistants", k, fmt.Sprintf(`{"name":"Assistant %d","first_message":"Hello"}`, j), &out); err != nil {
				return err
			}
			bo.assistants = append(bo.assistants, out.Assistant.ID)
		}
		for j := 0; j < 5; j++ {
			if err := send(client, "POST", base+"/numbers", k, fmt.Sprintf(`{"phone_number":"+3120%03d%04d","assistant_id":"%s"}`, i, j, bo.assistants[j]), nil); err != nil {
				return err
			}
		}
		for j := 0; j < 200; j++ {
			c := &store.Call{OrgID: o.ID, Status: call.StatusEnded, Direction: call.Inbound, Messages: json.RawMessage(`[{"role":"assistant","content":"Hello"},{"role":"user","content":"Hi"}]`),
				CreatedAt: time.Now().Add(-time.Duration(j) * time.Minute)}
			if err := db.CreateCall(ctx, c); err != nil {
				return err
			}
			bo.calls = append(bo.calls, c.ID)
		}
		all = append(all, bo)
	}

	type sample struct {
		d     time.Duration
		write bool
		err   bool
	}
	results := make([][]sample, *concurrency)
	deadline := time.Now().Add(*duration)
	var wg sync.WaitGroup
	start := time.Now()
	var rusageStart = cpuTime()
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	for w := 0; w < *concurrency; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for n := 0; time.Now().Before(deadline); n++ {
				o := all[rng.IntN(len(all))]
				a := o.assistants[rng.IntN(len(o.assistants))]
				var method, path, body string
				write := rng.IntN(100) < 10
				if write {
					if rng.IntN(2) == 0 {
						method, path, body = "POST", "/assistants", fmt.Sprintf(`{"name":"Bench %d-%d","is_active":false}`, w, n)
					} else {
						method, path, body = "PATCH", "/assistants/"+a, fmt.Sprintf(`{"first_message":"Hello %d"}`, n)
					}
				} else {
					switch rng.IntN(6) {
					case 0:
						method, path = "GET", "/assistants/"+a
					case 1:
						method, path = "GET", "/assistants"
					case 2:
						method, path = "GET", "/numbers"
					case 3:
						method, path = "GET", "/calls?limit=20"
					case 4:
						method, path = "GET", "/calls/"+o.calls[rng.IntN(len(o.calls))]
					default:
						method, path = "GET", "/organizations"
					}
				}
				t0 := time.Now()
				err := send(client, method, base+path, o.key, body, nil)
				results[w] = append(results[w], sample{time.Since(t0), write, err != nil})
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTime() - rusageStart

	var lat, rlat, wlat []time.Duration
	errs := 0
	for _, rs := range results {
		for _, s := range rs {
			if s.err {
				errs++
				continue
			}
			lat = append(lat, s.d)
			if s.write {
				wlat = append(wlat, s.d)
			} else {
				rlat = append(rlat, s.d)
			}
		}
	}
	fmt.Printf("engine=%s concurrency=%d orgs=%d duration=%s GOMAXPROCS=%d\n", engine, *concurrency, *orgs, elapsed.Round(time.Millisecond), runtime.GOMAXPROCS(0))
	fmt.Printf("requests=%d errors=%d throughput=%.0f req/s cpu=%.2f cores (server+client)\n", len(lat)+errs, errs, float64(len(lat)+errs)/elapsed.Seconds(), cpu.Seconds()/elapsed.Seconds())
	fmt.Printf("all:    p50=%s p95=%s p99=%s max=%s\n", pct(lat, 50), pct(lat, 95), pct(lat, 99), pct(lat, 100))
	fmt.Printf("reads:  n=%d p50=%s p99=%s\n", len(rlat), pct(rlat, 50), pct(rlat, 99))
	fmt.Printf("writes: n=%d p50=%s p99=%s\n", len(wlat), pct(wlat, 50), pct(wlat, 99))
	if errs > 0 {
		return fmt.Errorf("%d requests failed", errs)
	}
	return nil
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	i := int(float64(len(d)-1) * p / 100)
	return d[i].Round(10 * time.Microsecond)
}

func send(c *http.Client, method, url, key, body string, out any) error {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}
