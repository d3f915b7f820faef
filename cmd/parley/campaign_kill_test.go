package main

// Crash tests of the campaign dialer: `parley serve` is killed with SIGKILL
// in the middle of a 200-lead campaign dialled through the SIPp far end
// (sippfar_test.go), with about max_concurrent_calls leads being called at
// that moment. Afterwards the campaign must complete with no lead lost and
// none dialled twice for one attempt: for every lead the far end received as
// many INVITEs as the lead counts attempts and as there are call rows for
// it, a lead is tried again only when its earlier call was left unanswered by
// the killed process (ended server_stopped_unexpectedly by crash recovery),
// and a lead whose call had been answered is completed and never dialled
// again. With SQLite the killed node is restarted on the same data directory;
// with two nodes on one PostgreSQL the survivor ends the dead node's calls
// once its heartbeat is PARLEY_NODE_DEAD_AFTER old and finishes the campaign
// alone, the campaign's cap holding across both nodes throughout.
//
// One case may show fewer INVITEs than attempts: a call still dialing at the
// kill had its row written before its INVITE was sent, so its INVITE may
// never have left, and such an attempt counts all the same. The pacing
// fields are sent with the campaign and its counters are read through the
// API; the leads being called at the kill and the call rows (the lead and
// attempt are in a call's assistant snapshot) are read from the database.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/store"
	"github.com/parley-voice/parley/internal/store/storetest"
)

// The campaign both tests dial.
const (
	killLeads       = 200
	killMaxCalls    = 20
	killRate        = 20
	killMaxAttempts = 3
	killRetryDelay  = 2 // seconds
	killHangupAfter = 3 * time.Second
	// The kill comes once the far end has had this many INVITEs.
	killAfterInvites = 70
)

// campaignKill is one run: the far end, the nodes on one database, a store
// opened on that database by the test, and the campaign.
type campaignKill struct {
	far        *farEnd
	db         *store.DB
	orgID, id  string
	start      time.Time
	maxCalling atomic.Int64 // most leads calling at once, as polled
	stopPoll   func()
}

// campaignCounts is the campaign as GET /campaigns/{id} answers it.
type campaignCounts struct {
	ID                 string  `json:"id"`
	OrgID              string  `json:"org_id"`
	Status             string  `json:"status"`
	TotalLeads         int     `json:"total_leads"`
	CompletedLeads     int     `json:"completed_leads"`
	FailedLeads        int     `json:"failed_leads"`
	PendingLeads       int     `json:"pending_leads"`
	CallingLeads       int     `json:"calling_leads"`
	SkippedLeads       int     `json:"skipped_leads"`
	MaxConcurrentCalls int     `json:"max_concurrent_calls"`
	CallsPerSecond     float64 `json:"calls_per_second"`
	MaxAttempts        int     `json:"max_attempts"`
	RetryDelaySeconds  int     `json:"retry_delay_seconds"`
}

// counts reads the campaign through n's API; an error (n down, say) is
// returned, not fatal, for the poller.
func (k *campaignKill) counts(ctx context.Context, n *node) (*campaignCounts, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", n.base+"/api/v1/campaigns/"+k.id, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+recoveryKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /campaigns/%s = %d %s", k.id, resp.StatusCode, raw)
	}
	var c struct{ Campaign campaignCounts }
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("GET /campaigns/%s: %w", k.id, err)
	}
	return &c.Campaign, nil
}

// killEnv is the environment both tests give their nodes.
func killEnv(providers string) []string {
	return []string{"PARLEY_DEEPGRAM_BASE_URL=" + providers, "PARLEY_DEEPGRAM_API_KEY=fake",
		"PARLEY_OPENAI_BASE_URL=" + providers + "/v1", "PARLEY_OPENAI_API_KEY=fake",
		"PARLEY_ELEVENLABS_BASE_URL=" + providers, "PARLEY_ELEVENLABS_API_KEY=fake",
		"PARLEY_CAMPAIGN_TICK=100ms", "PARLEY_NODE_DEAD_AFTER=15s", "PARLEY_RING_TIMEOUT=10s",
		// The test polls the campaign's counters through the API.
		"PARLEY_RATE_LIMIT=100000",
		// Admission by CPU and write latency has its own tests; on a loaded
		// test machine it would back the campaign off.
		"PARLEY_MAX_WRITE_LATENCY=-1ms", "PARLEY_MAX_SCHED_LATENCY=-1ms"}
}

// openNodeStore opens, from the test, the database the node n uses.
func openNodeStore(t *testing.T, n *node) *store.DB {
	t.Helper()
	env := append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, n.env...)
	cfg, _, err := loadConfig("serve", nil, env, io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, db, err := openBackend(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// setUpCampaign makes, through n's API, an assistant, the far end as a SIP
// trunk, a number dialling through it and the campaign (not yet scheduled),
// whose leads all answer and hang up after killHangupAfter.
func setUpCampaign(t *testing.T, n *node, far *farEnd) *campaignKill {
	t.Helper()
	k := &campaignKill{far: far, db: openNodeStore(t, n)}
	var a struct{ Assistant struct{ ID string } }
	n.api(t, "POST", "/assistants", `{"name":"Reminders","first_message":"Hello {{name}}.",
		"llm_config":{"provider":"openai","model":"gpt-4.1","messages":[{"role":"system","content":"Be brief."}]},
		"stt_config":{"provider":"deepgram","model":"nova-3","language":"en"},
		"tts_config":{"provider":"elevenlabs","voice_id":"v"}}`, &a)
	var tr struct {
		Trunk struct{ ID string } `json:"sip_trunk"`
	}
	n.api(t, "POST", "/sip-trunks", `{"name":"SIPp","address":"`+far.Addr+`"}`, &tr)
	n.api(t, "POST", "/numbers", `{"phone_number":"+31201234567","transfer_trunk_id":"`+tr.Trunk.ID+`"}`, nil)

	// Only numbers the far end answers: last digit 0 or 4-9.
	answering := []int{0, 4, 5, 6, 7, 8, 9}
	leads := make([]string, killLeads)
	for i := range leads {
		leads[i] = fmt.Sprintf(`{"phone_number":"+316100%04d%d","variables":{"name":"Person %d"}}`, i, answering[i%len(answering)], i)
	}
	var c struct{ Campaign campaignCounts }
	n.api(t, "POST", "/campaigns", fmt.Sprintf(`{"name":"Kill","agent_id":"%s","schedule_start_time":"00:00:00","schedule_end_time":"23:59:59","timezone":"UTC",
		"max_concurrent_calls":%d,"calls_per_second":%d,"max_attempts":%d,"retry_delay_seconds":%d,"leads":[%s]}`,
		a.Assistant.ID, killMaxCalls, killRate, killMaxAttempts, killRetryDelay, strings.Join(leads, ",")), &c)
	got := c.Campaign
	if got.TotalLeads != killLeads || got.MaxConcurrentCalls != killMaxCalls || got.CallsPerSecond != killRate ||
		got.MaxAttempts != killMaxAttempts || got.RetryDelaySeconds != killRetryDelay {
		t.Fatalf("campaign created: %+v", got)
	}
	k.id, k.orgID = got.ID, got.OrgID
	return k
}

// schedule starts the campaign through the first of nodes and polls through
// any of them that answers, until the test ends, how many of its leads are
// being called.
func (k *campaignKill) schedule(t *testing.T, nodes ...*node) {
	t.Helper()
	k.start = time.Now()
	nodes[0].api(t, "PATCH", "/campaigns/"+k.id, `{"status":"scheduled"}`, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			for _, n := range nodes {
				if c, err := k.counts(ctx, n); err == nil {
					if int64(c.CallingLeads) > k.maxCalling.Load() {
						k.maxCalling.Store(int64(c.CallingLeads))
					}
					break
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	k.stopPoll = func() { cancel(); <-done }
	t.Cleanup(k.stopPoll)
}

// invites is how many INVITEs the far end has received in all.
func (k *campaignKill) invites() int {
	n := 0
	for _, c := range k.far.Invites() {
		n += c
	}
	return n
}

// waitInvites waits until the far end has received at least want INVITEs.
func (k *campaignKill) waitInvites(t *testing.T, want int) {
	t.Helper()
	waitFor(t, 60*time.Second, fmt.Sprintf("%d INVITEs at the far end", want), func() bool { return k.invites() >= want })
}

// jitter waits a random while under a third of a second, so that the kill
// falls on another step of the dialing each run.
func (k *campaignKill) jitter(t *testing.T) {
	d := rand.N(300 * time.Millisecond)
	t.Logf("kill %s after the %dth INVITE", d.Round(time.Millisecond), killAfterInvites)
	time.Sleep(d)
}

// killSnapshot is what the database held right after the kill.
type killSnapshot struct {
	at        time.Time
	calling   int // leads calling
	undialled int // of those, claimed with no call row yet
	unsettled int // of those, whose call had ended
	liveCalls int // calls of the killed node not ended
	answered  int // of those, answered
	// live is the status of each of those calls at the kill.
	live        map[string]string
	dialledRows int            // call rows in all
	byNode      map[string]int // call rows by the node that placed them
}

func (k *campaignKill) snapshot(t *testing.T, killed string) killSnapshot {
	t.Helper()
	s := killSnapshot{at: time.Now(), live: map[string]string{}, byNode: map[string]int{}}
	// The leads being called (the killed node's API is gone), and of those
	// the ones whose call row was never written (claimed, not dialled) and
	// those whose call had ended but was not settled yet.
	rows, err := k.db.Writer().QueryContext(context.Background(), fmt.Sprintf(`SELECT ca.id IS NULL, COALESCE(ca.status, '') FROM campaign_leads l
		LEFT JOIN calls ca ON ca.id = l.call_id WHERE l.campaign_id = '%s' AND l.status = 'calling'`, k.id))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var missing bool
		var st string
		if err := rows.Scan(&missing, &st); err != nil {
			t.Fatal(err)
		}
		s.calling++
		switch {
		case missing:
			s.undialled++
		case !(callRow{status: st}).live():
			s.unsettled++
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, cr := range k.callRows(t) {
		s.dialledRows++
		s.byNode[cr.node]++
		if cr.live() && cr.node == killed {
			s.live[cr.id] = cr.status
			s.liveCalls++
			if cr.answered {
				s.answered++
			}
		}
	}
	return s
}

// waitOrphansEnded waits until crash recovery has ended every call the
// killed node left live, and returns how long after the kill that was.
func (k *campaignKill) waitOrphansEnded(t *testing.T, snap killSnapshot, timeout time.Duration) time.Duration {
	t.Helper()
	waitFor(t, timeout, "the calls the killed node left live to be ended", func() bool {
		for _, cr := range k.callRows(t) {
			if _, ok := snap.live[cr.id]; ok && cr.live() {
				return false
			}
		}
		return true
	})
	return time.Since(snap.at)
}

// waitCompleted waits until the campaign is completed, reading it through
// n's API.
func (k *campaignKill) waitCompleted(t *testing.T, n *node, timeout time.Duration) *campaignCounts {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c, err := k.counts(context.Background(), n)
		if err != nil {
			t.Fatal(err)
		}
		if c.Status == "completed" {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("campaign not completed %s after it was scheduled: %s, %d completed, %d failed, %d pending, %d calling\n%s",
				time.Since(k.start).Round(time.Second), c.Status, c.CompletedLeads, c.FailedLeads, c.PendingLeads, c.CallingLeads, tail(n.proc.stderr.String(), 6000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// callRow is one call of the campaign as the database has it.
type callRow struct {
	id, status, endReason, node string
	answered                    bool
	leadID                      string
	attempt                     int
	created, ended              int64 // ms
}

// statuses counts the calls live at the kill by status.
func (s killSnapshot) statuses() map[string]int {
	n := map[string]int{}
	for _, st := range s.live {
		n[st]++
	}
	return n
}

func (c callRow) live() bool {
	return slices.Contains([]string{"connecting", "ringing", "dialing", "in-progress"}, c.status)
}

// orphan: ended by crash recovery, the process that ran it being gone.
func (c callRow) orphan() bool { return c.endReason == "server_stopped_unexpectedly" }

// callRows reads every call of the campaign, with the lead and attempt its
// assistant snapshot names and the node whose process life ran it.
func (k *campaignKill) callRows(t *testing.T) []callRow {
	t.Helper()
	rows, err := k.db.Writer().QueryContext(context.Background(), fmt.Sprintf(`SELECT c.id, c.status, COALESCE(c.end_reason, ''), c.started_at IS NOT NULL,
		COALESCE(b.node_id, ''), c.assistant_snapshot, c.created_at, COALESCE(c.ended_at, 0)
		FROM calls c LEFT JOIN node_boots b ON b.id = c.boot_id WHERE c.org_id = '%s' ORDER BY c.created_at, c.id`, k.orgID))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []callRow
	for rows.Next() {
		var r callRow
		var snapshot []byte
		if err := rows.Scan(&r.id, &r.status, &r.endReason, &r.answered, &r.node, &snapshot, &r.created, &r.ended); err != nil {
			t.Fatal(err)
		}
		var a struct {
			Metadata struct {
				CampaignID  string `json:"campaign_id"`
				LeadID      string `json:"lead_id"`
				LeadAttempt int    `json:"lead_attempt"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(snapshot, &a); err != nil {
			t.Fatalf("call %s: assistant snapshot: %v", r.id, err)
		}
		if a.Metadata.CampaignID != k.id {
			continue
		}
		r.leadID, r.attempt = a.Metadata.LeadID, a.Metadata.LeadAttempt
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// killVerdict sums up the checks.
type killVerdict struct {
	retried, failed, orphans, answeredOrphans int
	// mismatches: leads whose INVITEs differ from their attempts (allowed
	// only for a call still dialing at the kill).
	mismatches int
	byNode     map[string]int
	maxOverlap int
}

// check asserts that no lead was lost or dialled twice for one attempt.
func (k *campaignKill) check(t *testing.T, c *campaignCounts, snap killSnapshot) killVerdict {
	t.Helper()
	v := killVerdict{byNode: map[string]int{}}
	if c.TotalLeads != killLeads || c.CompletedLeads+c.FailedLeads != killLeads || c.PendingLeads != 0 || c.CallingLeads != 0 || c.SkippedLeads != 0 {
		t.Errorf("counters: %d leads, %d completed, %d failed, %d pending, %d calling, %d skipped",
			c.TotalLeads, c.CompletedLeads, c.FailedLeads, c.PendingLeads, c.CallingLeads, c.SkippedLeads)
	}
	leads, total, err := k.db.ListLeads(context.Background(), k.orgID, k.id, store.Page{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if total != killLeads || len(leads) != killLeads {
		t.Fatalf("%d leads listed of %d, want %d", len(leads), total, killLeads)
	}
	calls := k.callRows(t)
	byLead := map[string][]callRow{}
	for _, cr := range calls {
		byLead[cr.leadID] = append(byLead[cr.leadID], cr)
		v.byNode[cr.node]++
		if cr.orphan() {
			v.orphans++
			if cr.answered {
				v.answeredOrphans++
			}
		}
		if cr.live() {
			t.Errorf("call %s of lead %s still %s", cr.id, cr.leadID, cr.status)
		}
	}
	invites := k.far.Invites()
	for _, l := range leads {
		lc := byLead[l.ID]
		delete(byLead, l.ID)
		inv := invites[l.PhoneNumber]
		if inv != l.Attempts {
			v.mismatches++
		}
		// A call still dialing at the kill (no 180 recorded) had its row
		// written before its INVITE was sent: the INVITE may never have
		// left, and the attempt counts all the same (campaign.Decide).
		unsent := 0
		for _, cr := range lc {
			if snap.live[cr.id] == "dialing" {
				unsent++
			}
		}
		if l.Attempts > 1 {
			v.retried++
		}
		st := l.Status.String()
		if st == "failed" {
			v.failed++
		}
		if (st != "completed" && st != "failed") || len(lc) != l.Attempts || inv > l.Attempts || inv < l.Attempts-unsent || l.Attempts < 1 || l.Attempts > killMaxAttempts {
			t.Errorf("lead %s %s: %s after %d attempts, %d call rows, %d INVITEs at the far end", l.ID, l.PhoneNumber, st, l.Attempts, len(lc), inv)
			continue
		}
		if l.CallID == nil || *l.CallID != lc[len(lc)-1].id {
			t.Errorf("lead %s names call %v, its last call is %s", l.ID, l.CallID, lc[len(lc)-1].id)
		}
		for i, cr := range lc {
			if cr.attempt != i+1 {
				t.Errorf("lead %s: call %d of %d (%s) was dialled as attempt %d", l.ID, i+1, len(lc), cr.id, cr.attempt)
			}
			last := i == len(lc)-1
			// Every number answers: only a call the killed process left
			// unanswered may be followed by another.
			if !last && (!cr.orphan() || cr.answered) {
				t.Errorf("lead %s dialled again after its call %s (%s, %s, answered %v)", l.ID, cr.id, cr.status, cr.endReason, cr.answered)
			}
			if last && st == "completed" && !cr.answered {
				t.Errorf("lead %s completed, but its last call %s was not answered (%s, %s)", l.ID, cr.id, cr.status, cr.endReason)
			}
			if last && st == "failed" && (cr.answered || l.Attempts != killMaxAttempts) {
				t.Errorf("lead %s failed after %d attempts, its last call %s answered %v", l.ID, l.Attempts, cr.id, cr.answered)
			}
		}
	}
	for lead, lc := range byLead {
		t.Errorf("%d calls for lead %q, not of the campaign", len(lc), lead)
	}
	// The calls' own lives never overlap more than the cap: a lead is
	// calling from before its call is created to after it ended.
	type edge struct {
		at int64
		d  int
	}
	var edges []edge
	for _, cr := range calls {
		edges = append(edges, edge{cr.created, 1}, edge{cr.ended, -1})
	}
	slices.SortFunc(edges, func(a, b edge) int {
		if a.at != b.at {
			return int(a.at - b.at)
		}
		return a.d - b.d // an end before a start at the same instant
	})
	up := 0
	for _, e := range edges {
		up += e.d
		v.maxOverlap = max(v.maxOverlap, up)
	}
	if v.maxOverlap > killMaxCalls {
		t.Errorf("%d calls of the campaign up at once, max_concurrent_calls %d", v.maxOverlap, killMaxCalls)
	}
	if m := k.maxCalling.Load(); m > killMaxCalls {
		t.Errorf("%d leads calling at once, max_concurrent_calls %d", m, killMaxCalls)
	}
	return v
}

// TestCampaignKillRestart kills the only node (SQLite) in the middle of a
// campaign and starts it again on the same data directory and addresses.
func TestCampaignKillRestart(t *testing.T) {
	bin := parleyBinary(t)
	far := startFarEnd(t, killHangupAfter)
	providers := fakeProviders(t)
	n := newNode(t, "node-a", t.TempDir(), append(killEnv(providers), "PARLEY_RTP_PORTS=41000-41999")...)
	n.start(t, bin)
	k := setUpCampaign(t, n, far)
	k.schedule(t, n)

	k.waitInvites(t, killAfterInvites)
	k.jitter(t)
	n.kill(t)
	snap := k.snapshot(t, n.name)
	invitesAtKill := k.invites()
	firstLife := n.proc.stderr.String()
	n.start(t, bin)
	restarted := time.Since(snap.at)
	orphansEnded := k.waitOrphansEnded(t, snap, 20*time.Second)
	c := k.waitCompleted(t, n, 80*time.Second)
	elapsed := time.Since(k.start)
	k.stopPoll()
	v := k.check(t, c, snap)
	n.stop(t)
	if v.orphans != snap.liveCalls {
		t.Errorf("%d calls of the killed node live at the kill, %d ended by recovery", snap.liveCalls, v.orphans)
	}
	t.Logf("kill after %d INVITEs (%d call rows, %d 'campaign lead dialled' lines in the first life): %d leads calling (%d claimed with no call row, %d with their call ended), %d calls live (%d answered; by status %v); restarted in %s, its calls ended by recovery %s after the kill",
		invitesAtKill, snap.dialledRows, strings.Count(firstLife, "campaign lead dialled"), snap.calling, snap.undialled, snap.unsettled, snap.liveCalls, snap.answered, snap.statuses(), restarted.Round(time.Millisecond), orphansEnded.Round(time.Millisecond))
	t.Logf("handed back uncounted after the restart: %d", strings.Count(n.proc.stderr.String(), "lead handed back: its dial never started"))
	t.Logf("campaign completed in %s: %d completed, %d failed; %d leads retried; %d calls ended by recovery (%d answered); INVITE/attempt mismatches %d; at most %d leads calling (polled), %d calls up at once",
		elapsed.Round(time.Millisecond), c.CompletedLeads, c.FailedLeads, v.retried, v.orphans, v.answeredOrphans, v.mismatches, k.maxCalling.Load(), v.maxOverlap)
}

// TestCampaignKillTwoNodes runs the campaign on two nodes sharing one
// PostgreSQL schema and kills one of them for good; the other ends the dead
// node's calls once its heartbeat is PARLEY_NODE_DEAD_AFTER old, settles
// their leads and finishes the campaign.
func TestCampaignKillTwoNodes(t *testing.T) {
	if storetest.PostgresURL(t) == "" {
		t.Skip("PARLEY_TEST_POSTGRES_URL not set")
	}
	bin := parleyBinary(t)
	far := startFarEnd(t, killHangupAfter)
	providers := fakeProviders(t)
	shared := t.TempDir()
	env := append(killEnv(providers), "PARLEY_DATABASE_URL="+storetest.PostgresSchema(t))
	a := newNode(t, "node-a", shared, append(env, "PARLEY_RTP_PORTS=41000-41999")...)
	b := newNode(t, "node-b", shared, append(env, "PARLEY_RTP_PORTS=42000-42999")...)
	a.start(t, bin)
	b.start(t, bin)
	k := setUpCampaign(t, a, far)
	k.schedule(t, a, b)

	k.waitInvites(t, killAfterInvites)
	k.jitter(t)
	a.kill(t)
	snap := k.snapshot(t, a.name)
	invitesAtKill := k.invites()
	aLog := a.proc.stderr.String()
	beforeKill := snap.byNode
	// node-b ends node-a's calls once node-a's heartbeat (every 5 s) is
	// PARLEY_NODE_DEAD_AFTER (15 s) old, at its next sweep.
	orphansEnded := k.waitOrphansEnded(t, snap, 40*time.Second)
	c := k.waitCompleted(t, b, 80*time.Second)
	elapsed := time.Since(k.start)
	k.stopPoll()
	v := k.check(t, c, snap)
	b.stop(t)
	if beforeKill["node-a"] == 0 || beforeKill["node-b"] == 0 {
		t.Errorf("calls placed before the kill by node: %v; want both nodes dialling", beforeKill)
	}
	// The kill may fall between a call row's write and the log line.
	logged := strings.Count(aLog, "campaign lead dialled")
	if logged > beforeKill["node-a"] || logged < beforeKill["node-a"]-snap.liveCalls {
		t.Errorf("node-a logged %d dials, the database has %d of its calls (%d live at the kill)", logged, beforeKill["node-a"], snap.liveCalls)
	}
	if v.byNode["node-a"] != beforeKill["node-a"] {
		t.Errorf("node-a has %d calls after the campaign, %d at its kill", v.byNode["node-a"], beforeKill["node-a"])
	}
	if v.orphans != snap.liveCalls {
		t.Errorf("%d calls of the killed node live at the kill, %d ended by recovery", snap.liveCalls, v.orphans)
	}
	t.Logf("kill of node-a after %d INVITEs: calls by node before the kill %v (%d 'campaign lead dialled' lines in node-a's log); %d leads calling on both nodes (%d claimed with no call row, %d with their call ended), %d calls of node-a live (%d answered; by status %v); node-b had ended them all %s after the kill",
		invitesAtKill, beforeKill, logged, snap.calling, snap.undialled, snap.unsettled, snap.liveCalls, snap.answered, snap.statuses(), orphansEnded.Round(time.Millisecond))
	t.Logf("campaign completed in %s: %d completed, %d failed; calls by node %v; %d leads retried; %d calls ended by recovery (%d answered); INVITE/attempt mismatches %d; at most %d leads calling (polled), %d calls up at once",
		elapsed.Round(time.Millisecond), c.CompletedLeads, c.FailedLeads, v.byNode, v.retried, v.orphans, v.answeredOrphans, v.mismatches, k.maxCalling.Load(), v.maxOverlap)
}
