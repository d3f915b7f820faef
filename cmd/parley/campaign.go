package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// campaignCommand is `parley campaign ...`, the client side of outbound
// campaigns; it talks to a running server's API, not to the database.
func campaignCommand(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "watch" {
		fmt.Fprint(stderr, "usage: parley campaign watch ID [--url URL] [--key KEY] [--every 1s]\n")
		if len(args) == 0 {
			return errors.New("campaign: missing subcommand")
		}
		return fmt.Errorf("campaign: unknown subcommand %q", args[0])
	}
	return watchCampaign(ctx, args[1:], env, stdout, stderr, isTerminal(stdout))
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// lookupEnv is the value of name in env ("NAME=value" entries), "" if unset.
func lookupEnv(env []string, name string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}

// watchCampaign polls a campaign and prints a progress line each time it
// changes: redrawn in place on a terminal, one line after another
// otherwise. It returns nil once the campaign is completed or cancelled and
// its last calls have ended (or when ctx ends), and an error the server's
// refusal explains on 401, 403 and 404; other failures (the server
// restarting, a 5xx) are reported on stderr and polling goes on.
func watchCampaign(ctx context.Context, args, env []string, stdout, stderr io.Writer, terminal bool) error {
	fs := flag.NewFlagSet("parley campaign watch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: parley campaign watch ID [flags]   follow a campaign's progress until it ends\n\nFlags:\n")
		fs.PrintDefaults()
	}
	defURL := lookupEnv(env, "PARLEY_API_URL")
	if defURL == "" {
		defURL = "http://127.0.0.1:8080"
	}
	base := fs.String("url", defURL, "the Parley server's URL (default: PARLEY_API_URL or http://127.0.0.1:8080)")
	key := fs.String("key", lookupEnv(env, "PARLEY_API_KEY"), "API key of the campaign's organization (default: PARLEY_API_KEY)")
	every := fs.Duration("every", time.Second, "how often to ask the server")
	// The id may come before the flags or after them.
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if id == "" && fs.NArg() > 0 {
		id = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return fmt.Errorf("campaign watch: one campaign id, not %d", fs.NArg()+1)
	}
	switch {
	case id == "":
		fs.Usage()
		return errors.New("campaign watch: give the campaign id")
	case strings.ContainsAny(id, "/?#% "):
		return fmt.Errorf("campaign watch: %q is not a campaign id", id)
	case *key == "":
		return errors.New("campaign watch: no API key: give --key or set PARLEY_API_KEY")
	case *every <= 0:
		return fmt.Errorf("campaign watch: --every must be positive (got %v)", *every)
	}
	// The API's own prefix is tolerated: --url http://host:8080/api/v1.
	u, err := url.Parse(strings.TrimSuffix(strings.TrimRight(*base, "/"), "/api/v1"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("campaign watch: --url %q: want an http(s) URL such as http://127.0.0.1:8080", *base)
	}
	endpoint := u.JoinPath("/api/v1/campaigns", id).String()

	w := &watcher{endpoint: endpoint, id: id, base: *base, key: *key, client: &http.Client{Timeout: 10 * time.Second}}
	var last, lastErr string
	finish := func() {
		if terminal && last != "" {
			fmt.Fprintln(stdout)
		}
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			finish()
			return nil
		case <-timer.C:
		}
		c, err := w.get(ctx)
		var fatal *fatalError
		switch {
		case errors.As(err, &fatal):
			finish()
			return err
		case err != nil && ctx.Err() != nil:
			finish()
			return nil
		case err != nil:
			if msg := err.Error(); msg != lastErr {
				fmt.Fprintf(stderr, "campaign watch: %s (still trying)\n", msg)
				lastErr = msg
			}
		default:
			lastErr = ""
			if line := c.line(); line != last {
				if terminal {
					fmt.Fprintf(stdout, "\r%s\x1b[K", line)
				} else {
					fmt.Fprintln(stdout, line)
				}
				last = line
			}
			if c.over() {
				finish()
				return nil
			}
		}
		timer.Reset(*every)
	}
}

// watcher fetches one campaign.
type watcher struct {
	endpoint, id, base, key string
	client                  *http.Client
}

// fatalError is an answer that polling again will not change.
type fatalError struct{ msg string }

func (e *fatalError) Error() string { return e.msg }

// watched is the part of a campaign answer the watch shows.
type watched struct {
	ID                string     `json:"id"`
	Name              string     `json:"name"`
	Status            string     `json:"status"`
	StatusReason      *string    `json:"status_reason"`
	Total             int        `json:"total_leads"`
	Completed         int        `json:"completed_leads"`
	Failed            int        `json:"failed_leads"`
	Pending           int        `json:"pending_leads"`
	Calling           int        `json:"calling_leads"`
	Skipped           int        `json:"skipped_leads"`
	RetriesScheduled  int        `json:"retries_scheduled"`
	NextRetryAt       *time.Time `json:"next_retry_at"`
	BackoffUntil      *time.Time `json:"backoff_until"`
	NextDialAt        *time.Time `json:"next_dial_at"`
	ScheduleStartTime string     `json:"schedule_start_time"`
	ScheduleEndTime   string     `json:"schedule_end_time"`
	Timezone          string     `json:"timezone"`
	DaysOfWeek        []string   `json:"days_of_week"`
}

func (w *watcher) get(ctx context.Context) (*watched, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.endpoint, nil)
	if err != nil {
		return nil, &fatalError{fmt.Sprintf("campaign watch: %v", err)}
	}
	req.Header.Set("Authorization", "Bearer "+w.key)
	req.Header.Set("Accept", "application/json")
	resp, err := w.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", w.endpoint, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s: reading the answer: %w", w.endpoint, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		why := e.Error
		if why == "" {
			why = strings.TrimSpace(string(body))
		}
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return nil, &fatalError{fmt.Sprintf("campaign watch: the server refused the API key (%d: %s); give the key of the campaign's organization with --key or PARLEY_API_KEY", resp.StatusCode, why)}
		case http.StatusNotFound:
			return nil, &fatalError{fmt.Sprintf("campaign watch: no campaign %s on %s for this API key (404: %s)", w.id, w.base, why)}
		}
		if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
			return nil, &fatalError{fmt.Sprintf("campaign watch: GET %s: %s: %s", w.endpoint, resp.Status, why)}
		}
		return nil, fmt.Errorf("GET %s: %s", w.endpoint, resp.Status)
	}
	var out struct {
		Campaign *watched `json:"campaign"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.Campaign == nil {
		return nil, fmt.Errorf("GET %s: not a campaign answer", w.endpoint)
	}
	return out.Campaign, nil
}

// over reports whether the campaign is finished and no call is left.
func (c *watched) over() bool {
	return (c.Status == "completed" || c.Status == "cancelled") && c.Calling == 0
}

// barWidth is the number of cells of the progress bar.
const barWidth = 20

// line is the campaign's progress on one line.
func (c *watched) line() string {
	done := c.Completed + c.Failed + c.Skipped
	filled := 0
	if c.Total > 0 {
		filled = min(barWidth, done*barWidth/c.Total)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[%s%s] %d/%d  pending %d  calling %d  completed %d  failed %d  skipped %d  retries %d  %s",
		strings.Repeat("#", filled), strings.Repeat(".", barWidth-filled), done, c.Total,
		c.Pending, c.Calling, c.Completed, c.Failed, c.Skipped, c.RetriesScheduled, c.Status)
	if c.StatusReason != nil && *c.StatusReason != "" {
		fmt.Fprintf(&b, " (%s)", *c.StatusReason)
	}
	if c.Calling == 0 && c.Pending > 0 && c.Status == "scheduled" {
		b.WriteString("  " + c.nextDial())
	}
	return b.String()
}

// nextDial says when the next call can start: the server's next_dial_at,
// or from an older server's answer, after a backoff, at the first retry
// when every pending lead is one, else within the calling window.
func (c *watched) nextDial() string {
	loc, err := time.LoadLocation(c.Timezone)
	if err != nil {
		loc = time.UTC
	}
	if c.NextDialAt != nil { // the server knows the window
		return "next dial " + c.NextDialAt.In(loc).Format("2006-01-02 15:04:05 MST")
	}
	var next *time.Time
	if c.RetriesScheduled == c.Pending && c.NextRetryAt != nil {
		next = c.NextRetryAt
	}
	if c.BackoffUntil != nil && (next == nil || c.BackoffUntil.After(*next)) {
		next = c.BackoffUntil
	}
	if next != nil {
		return "next dial " + next.In(loc).Format("2006-01-02 15:04:05 MST")
	}
	days := "every day"
	if len(c.DaysOfWeek) > 0 {
		days = strings.Join(c.DaysOfWeek, ",")
	}
	return fmt.Sprintf("next dial in the window %s-%s %s, %s", hhmm(c.ScheduleStartTime), hhmm(c.ScheduleEndTime), c.Timezone, days)
}

// hhmm shortens "HH:MM:SS" to "HH:MM" when the seconds are zero.
func hhmm(clock string) string {
	if s, ok := strings.CutSuffix(clock, ":00"); ok && len(s) == len("15:04") {
		return s
	}
	return clock
}
