package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// answer is one reply of the fake server: a status and a campaign (or an
// error message).
type answer struct {
	status int
	c      map[string]any
	err    string
}

// camp is a campaign answer: counters as pending/calling/completed/failed/
// skipped/retries, a status, then members to change.
func camp(status string, pending, calling, completed, failed, skipped, retries int, more ...any) answer {
	c := map[string]any{
		"id": "c1", "name": "Q4", "status": status, "status_reason": nil,
		"total_leads": pending + calling + completed + failed + skipped, "pending_leads": pending, "calling_leads": calling,
		"completed_leads": completed, "failed_leads": failed, "skipped_leads": skipped, "retries_scheduled": retries,
		"next_retry_at": nil, "backoff_until": nil, "schedule_start_time": "09:00:00", "schedule_end_time": "17:30:00",
		"timezone": "Europe/Amsterdam", "days_of_week": []string{},
	}
	for i := 0; i+1 < len(more); i += 2 {
		c[more[i].(string)] = more[i+1]
	}
	return answer{status: 200, c: c}
}

// fakeAPI serves the answers in turn, the last one from then on, and
// counts the requests.
type fakeAPI struct {
	mu      sync.Mutex
	answers []answer
	n       int
	auth    string
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	a := f.answers[min(f.n, len(f.answers)-1)]
	f.n++
	f.auth = r.Header.Get("Authorization")
	f.mu.Unlock()
	if r.URL.Path != "/api/v1/campaigns/c1" {
		a = answer{status: 404, err: "campaign " + strings.TrimPrefix(r.URL.Path, "/api/v1/campaigns/") + " not found"}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.status)
	if a.status == 200 {
		_ = json.NewEncoder(w).Encode(map[string]any{"campaign": a.c})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"error": a.err, "message": http.StatusText(a.status)})
}

func TestCampaignWatch(t *testing.T) {
	tests := []struct {
		name    string
		answers []answer
		args    []string // after the server URL flag
		want    []string // stdout lines
		stderr  string   // substring of stderr
		wantErr string   // substring of the error; "" for none
	}{
		{
			name: "runs to completion, unchanged answers print nothing",
			answers: []answer{
				camp("scheduled", 4, 0, 0, 0, 0, 0),
				camp("scheduled", 4, 0, 0, 0, 0, 0),
				camp("scheduled", 2, 2, 0, 0, 0, 0),
				camp("scheduled", 1, 1, 1, 1, 0, 0),
				camp("scheduled", 1, 1, 1, 1, 0, 0),
				camp("scheduled", 0, 1, 2, 1, 0, 0),
				camp("completed", 0, 0, 3, 1, 0, 0),
			},
			want: []string{
				"[....................] 0/4  pending 4  calling 0  completed 0  failed 0  skipped 0  retries 0  scheduled  next dial in the window 09:00-17:30 Europe/Amsterdam, every day",
				"[....................] 0/4  pending 2  calling 2  completed 0  failed 0  skipped 0  retries 0  scheduled",
				"[##########..........] 2/4  pending 1  calling 1  completed 1  failed 1  skipped 0  retries 0  scheduled",
				"[###############.....] 3/4  pending 0  calling 1  completed 2  failed 1  skipped 0  retries 0  scheduled",
				"[####################] 4/4  pending 0  calling 0  completed 3  failed 1  skipped 0  retries 0  completed",
			},
		},
		{
			name: "retries, backoff and a pause by the platform",
			answers: []answer{
				camp("scheduled", 2, 0, 1, 0, 0, 2, "next_retry_at", "2030-05-06T07:30:00.000Z"),
				camp("scheduled", 2, 0, 1, 0, 0, 1, "next_retry_at", "2030-05-06T07:30:00.000Z"),
				camp("scheduled", 2, 0, 1, 0, 0, 2, "next_retry_at", "2030-05-06T07:30:00.000Z", "backoff_until", "2030-05-06T08:00:00.000Z", "days_of_week", []string{"mon", "fri"}),
				camp("paused", 2, 0, 1, 0, 0, 2, "status_reason", "insufficient_credits: add minutes"),
				camp("cancelled", 0, 1, 1, 0, 1, 0),
				camp("cancelled", 0, 0, 2, 0, 1, 0),
			},
			want: []string{
				"[######..............] 1/3  pending 2  calling 0  completed 1  failed 0  skipped 0  retries 2  scheduled  next dial 2030-05-06 09:30:00 CEST",
				"[######..............] 1/3  pending 2  calling 0  completed 1  failed 0  skipped 0  retries 1  scheduled  next dial in the window 09:00-17:30 Europe/Amsterdam, every day",
				"[######..............] 1/3  pending 2  calling 0  completed 1  failed 0  skipped 0  retries 2  scheduled  next dial 2030-05-06 10:00:00 CEST",
				"[######..............] 1/3  pending 2  calling 0  completed 1  failed 0  skipped 0  retries 2  paused (insufficient_credits: add minutes)",
				"[#############.......] 2/3  pending 0  calling 1  completed 1  failed 0  skipped 1  retries 0  cancelled",
				"[####################] 3/3  pending 0  calling 0  completed 2  failed 0  skipped 1  retries 0  cancelled",
			},
		},
		{
			name:    "a server error is reported and polling goes on",
			answers: []answer{{status: 503, err: "restarting"}, {status: 503, err: "restarting"}, camp("completed", 0, 0, 1, 0, 0, 0)},
			want:    []string{"[####################] 1/1  pending 0  calling 0  completed 1  failed 0  skipped 0  retries 0  completed"},
			stderr:  "503 Service Unavailable (still trying)",
		},
		{
			name:    "an empty campaign",
			answers: []answer{camp("draft", 0, 0, 0, 0, 0, 0), camp("cancelled", 0, 0, 0, 0, 0, 0)},
			want: []string{
				"[....................] 0/0  pending 0  calling 0  completed 0  failed 0  skipped 0  retries 0  draft",
				"[....................] 0/0  pending 0  calling 0  completed 0  failed 0  skipped 0  retries 0  cancelled",
			},
		},
		{
			name:    "401",
			answers: []answer{{status: 401, err: "invalid API key"}},
			wantErr: "the server refused the API key (401: invalid API key); give the key of the campaign's organization with --key or PARLEY_API_KEY",
		},
		{
			name:    "404",
			answers: []answer{camp("draft", 0, 0, 0, 0, 0, 0)},
			args:    []string{"c2"},
			wantErr: "no campaign c2 on ",
		},
		{
			name:    "other client errors end the watch",
			answers: []answer{{status: 400, err: "campaign id must be a UUID"}},
			wantErr: "400 Bad Request: campaign id must be a UUID",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api := &fakeAPI{answers: tc.answers}
			srv := httptest.NewServer(api)
			defer srv.Close()
			args := append([]string{"c1"}, tc.args...)
			if len(tc.args) > 0 {
				args = tc.args
			}
			args = append(args, "--url", srv.URL, "--every", "1ms")
			var out, errOut bytes.Buffer
			err := watchCampaign(context.Background(), args, []string{"PARLEY_API_KEY=fl_test"}, &out, &errOut, false)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("err = %v; stderr %s", err, errOut.String())
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
			}
			var got []string
			if s := strings.TrimSuffix(out.String(), "\n"); s != "" {
				got = strings.Split(s, "\n")
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("stdout:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if !strings.Contains(errOut.String(), tc.stderr) {
				t.Errorf("stderr = %q, want it to contain %q", errOut.String(), tc.stderr)
			}
			if strings.Count(errOut.String(), "still trying") > 1 {
				t.Errorf("the same failure reported more than once: %q", errOut.String())
			}
			if api.auth != "Bearer fl_test" {
				t.Errorf("Authorization = %q", api.auth)
			}
		})
	}
}

// TestCampaignWatchTerminal: on a terminal each change redraws the line in
// place and the watch ends with a newline.
func TestCampaignWatchTerminal(t *testing.T) {
	api := &fakeAPI{answers: []answer{camp("scheduled", 0, 1, 0, 0, 0, 0), camp("completed", 0, 0, 1, 0, 0, 0)}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	var out bytes.Buffer
	env := []string{"PARLEY_API_URL=" + srv.URL + "/api/v1/", "PARLEY_API_KEY=fl_env"}
	if err := watchCampaign(context.Background(), []string{"--every", "1ms", "c1"}, env, &out, &bytes.Buffer{}, true); err != nil {
		t.Fatal(err)
	}
	want := "\r[....................] 0/1  pending 0  calling 1  completed 0  failed 0  skipped 0  retries 0  scheduled\x1b[K" +
		"\r[####################] 1/1  pending 0  calling 0  completed 1  failed 0  skipped 0  retries 0  completed\x1b[K\n"
	if out.String() != want {
		t.Fatalf("terminal output %q\nwant %q", out.String(), want)
	}
	if api.auth != "Bearer fl_env" {
		t.Errorf("Authorization = %q", api.auth)
	}
}

func TestCampaignWatchUsage(t *testing.T) {
	for _, tc := range []struct {
		args, env []string
		want      string
	}{
		{nil, []string{"PARLEY_API_KEY=k"}, "give the campaign id"},
		{[]string{"c1"}, nil, "no API key"},
		{[]string{"c1", "c2", "--key", "k"}, nil, "one campaign id"},
		{[]string{"../organizations", "--key", "k"}, nil, "is not a campaign id"},
		{[]string{"c1", "--key", "k", "--every", "0s"}, nil, "--every must be positive"},
		{[]string{"c1", "--key", "k", "--url", "ftp://x"}, nil, "want an http(s) URL"},
	} {
		err := watchCampaign(context.Background(), tc.args, tc.env, &bytes.Buffer{}, &bytes.Buffer{}, false)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.args, err, tc.want)
		}
	}
	if err := run(context.Background(), []string{"campaign", "follow"}, nil, &bytes.Buffer{}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), `unknown subcommand "follow"`) {
		t.Errorf("campaign follow: %v", err)
	}
}
