package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/parley-voice/parley/internal/certfile/certtest"
)

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	ca := certtest.NewCA(t, "config CA")
	certFile, _ := ca.WriteFiles(t, dir, "a", "a", "127.0.0.1")
	_, otherKey := ca.WriteFiles(t, dir, "b", "b", "127.0.0.1")
	tests := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"unknown env", []string{"migrate"}, []string{"PARLEY_HTTP_ADRR=1"}, "unknown setting PARLEY_HTTP_ADRR"},
		{"bad rate limit", []string{"migrate"}, []string{"PARLEY_RATE_LIMIT=lots"}, "PARLEY_RATE_LIMIT"},
		{"bad flag value", []string{"migrate", "--rate-limit", "0"}, nil, "flag --rate-limit"},
		{"unknown flag", []string{"migrate", "--colour", "red"}, nil, "flag provided but not defined: -colour"},
		{"bad addr", []string{"serve"}, []string{"PARLEY_HTTP_ADDR=nowhere"}, "PARLEY_HTTP_ADDR"},
		{"bad database url", []string{"migrate"}, []string{"PARLEY_DATABASE_URL=mysql://x"}, "PARLEY_DATABASE_URL"},
		{"bad master key", []string{"migrate"}, []string{"PARLEY_MASTER_KEY=short"}, "PARLEY_MASTER_KEY"},
		{"short bootstrap key", []string{"serve"}, []string{"PARLEY_BOOTSTRAP_API_KEY=abc"}, "PARLEY_BOOTSTRAP_API_KEY"},
		{"bad log level", []string{"migrate"}, []string{"PARLEY_LOG_LEVEL=loud"}, "PARLEY_LOG_LEVEL"},
		{"unknown command", []string{"launch"}, nil, `unknown command "launch"`},
		{"bad sip addr", []string{"migrate"}, []string{"PARLEY_SIP_ADDR=localhost:5060"}, "PARLEY_SIP_ADDR"},
		{"bad rtp ports", []string{"migrate"}, []string{"PARLEY_RTP_PORTS=20000-10000"}, "PARLEY_RTP_PORTS"},
		{"bad provider url", []string{"migrate"}, []string{"PARLEY_DEEPGRAM_BASE_URL=ftp://x"}, "PARLEY_DEEPGRAM_BASE_URL"},
		{"bad media timeout", []string{"migrate"}, []string{"PARLEY_MEDIA_TIMEOUT=0s"}, "PARLEY_MEDIA_TIMEOUT"},
		{"s3 without a bucket", []string{"migrate"}, []string{"PARLEY_S3_ENDPOINT=minio:9000"}, "PARLEY_S3_BUCKET"},
		{"bad postcall concurrency", []string{"migrate"}, []string{"PARLEY_POSTCALL_CONCURRENCY=0"}, "PARLEY_POSTCALL_CONCURRENCY"},
		{"bad public url", []string{"migrate"}, []string{"PARLEY_PUBLIC_URL=voice.example.com"}, "PARLEY_PUBLIC_URL"},
		{"node id with a space", []string{"migrate"}, []string{"PARLEY_NODE_ID=node one"}, "PARLEY_NODE_ID"},
		{"short recording url ttl", []string{"migrate"}, []string{"PARLEY_RECORDING_URL_TTL=10s"}, "PARLEY_RECORDING_URL_TTL"},
		{"unreachable s3", []string{"serve"}, []string{"PARLEY_HTTP_ADDR=127.0.0.1:0", "PARLEY_SIP_ADDR=off", "PARLEY_S3_ENDPOINT=127.0.0.1:1", "PARLEY_S3_BUCKET=rec",
			"PARLEY_S3_ACCESS_KEY_ID=a", "PARLEY_S3_SECRET_ACCESS_KEY=b", "PARLEY_S3_INSECURE=true"}, "recording storage"},
		{"tls addr without certificate", []string{"migrate"}, []string{"PARLEY_SIP_TLS_ADDR=127.0.0.1:5061"}, "PARLEY_SIP_TLS_CERT"},
		{"bad tls addr", []string{"migrate"}, []string{"PARLEY_SIP_TLS_ADDR=sip.example.com:5061"}, "PARLEY_SIP_TLS_ADDR"},
		{"missing tls ca", []string{"migrate"}, []string{"PARLEY_SIP_TLS_CA=/nonexistent/ca.pem"}, "PARLEY_SIP_TLS_CA"},
		{"bad tls insecure", []string{"migrate"}, []string{"PARLEY_SIP_TLS_INSECURE=maybe"}, "PARLEY_SIP_TLS_INSECURE"},
		{"tls key does not match", []string{"serve"}, []string{"PARLEY_HTTP_ADDR=127.0.0.1:0", "PARLEY_SIP_ADDR=127.0.0.1:0", "PARLEY_SIP_TLS_ADDR=127.0.0.1:0",
			"PARLEY_SIP_TLS_CERT=" + certFile, "PARLEY_SIP_TLS_KEY=" + otherKey}, "PARLEY_SIP_TLS_CERT/PARLEY_SIP_TLS_KEY"},
		{"bad vad", []string{"migrate"}, []string{"PARLEY_VAD=webrtc"}, "PARLEY_VAD"},
		{"bad silero threshold", []string{"migrate"}, []string{"PARLEY_SILERO_THRESHOLD=0.99"}, "PARLEY_SILERO_THRESHOLD"},
		{"silero files missing", []string{"serve"}, []string{"PARLEY_HTTP_ADDR=127.0.0.1:0", "PARLEY_SIP_ADDR=127.0.0.1:0", "PARLEY_VAD=silero",
			"PARLEY_SILERO_DIR=" + filepath.Join(dir, "no-silero")}, "scripts/silero-setup.sh"},
		{"public addr not an ip", []string{"serve"}, []string{"PARLEY_HTTP_ADDR=127.0.0.1:0", "PARLEY_SIP_ADDR=127.0.0.1:0", "PARLEY_SIP_PUBLIC_ADDR=sip.example.com"}, "PARLEY_SIP_PUBLIC_ADDR"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := append([]string{"PARLEY_DATA_DIR=" + dir}, tc.env...)
			var out, errb bytes.Buffer
			err := run(context.Background(), tc.args, env, &out, &errb)
			if err == nil || !strings.Contains(err.Error()+errb.String(), tc.want) {
				t.Fatalf("err = %v (stderr %q), want it to mention %q", err, errb.String(), tc.want)
			}
			if strings.Contains(err.Error(), "abc") && tc.name == "short bootstrap key" {
				t.Fatalf("secret value echoed in error: %v", err)
			}
		})
	}
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestServe starts the real binary's run function, as `parley serve` does, on
// a fresh data directory and talks to it over HTTP.
func TestServe(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"))
	dir := t.TempDir()
	addr := freeAddr(t)
	key := "test-bootstrap-key-0123456789"
	env := []string{"PARLEY_DATA_DIR=" + dir, "PARLEY_HTTP_ADDR=" + addr, "PARLEY_SIP_ADDR=127.0.0.1:0", "PARLEY_BOOTSTRAP_API_KEY=" + key, "PARLEY_TEST_IGNORED=1"}
	ctx, cancel := context.WithCancel(context.Background())
	var stderr lockedBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, env, &bytes.Buffer{}, &stderr) }()

	base := "http://" + addr
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/api/v1/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("server did not become healthy: %v\n%s", err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	req, _ := http.NewRequest("POST", base+"/api/v1/assistants", strings.NewReader(`{"name":"Front desk"}`))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("create assistant with the bootstrap key = %d %v", resp.StatusCode, body)
	}
	fi, err := os.Stat(filepath.Join(dir, "master.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("master key file: %v, mode %v", err, fi.Mode())
	}
	if !strings.Contains(stderr.String(), "generated a new master key") {
		t.Fatalf("no warning about the generated master key:\n%s", stderr.String())
	}
	if strings.Contains(stderr.String(), key) {
		t.Fatal("the bootstrap key was logged")
	}
	stopServe(t, cancel, done)
}

func TestAdminCommands(t *testing.T) {
	dir := t.TempDir()
	env := []string{"PARLEY_DATA_DIR=" + dir, "PARLEY_MASTER_KEY=" + strings.Repeat("ab", 32)}
	runOK := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if err := run(context.Background(), args, env, &out, &errb); err != nil {
			t.Fatalf("parley %s: %v\n%s", strings.Join(args, " "), err, errb.String())
		}
		return out.String()
	}
	out := runOK("org", "create", "--name", "Acme", "--minutes", "12.5")
	m := regexp.MustCompile(`org_id:\s+(\S+)\nkey_id:\s+(\S+)\napi_key:\s+(\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("org create printed %q", out)
	}
	org, keyID, key := m[1], m[2], m[3]
	if !strings.HasPrefix(key, "fl_live_") {
		t.Fatalf("key = %q", key)
	}
	if list := runOK("org", "list"); !strings.Contains(list, org) || !strings.Contains(list, "12.5") {
		t.Fatalf("org list = %q", list)
	}
	runOK("org", "balance", "--org", org, "--minutes", "-3")
	if list := runOK("org", "list"); !strings.Contains(list, "-3") {
		t.Fatalf("balance not set: %q", list)
	}
	if out := runOK("org", "balance", "--org", org, "--add", "10.25"); !strings.Contains(out, "now has 7.25 minutes") {
		t.Fatalf("balance --add printed %q", out)
	}
	if out := runOK("org", "balance", "--org", org, "--add", "-0.25"); !strings.Contains(out, "now has 7 minutes") {
		t.Fatalf("balance --add -0.25 printed %q", out)
	}
	for _, bad := range [][]string{{"--org", org}, {"--org", org, "--add", "1", "--minutes", "2"}, {"--org", "nope", "--add", "1"}} {
		if err := run(context.Background(), append([]string{"org", "balance"}, bad...), env, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
			t.Fatalf("org balance %v succeeded", bad)
		}
	}
	out2 := runOK("key", "create", "--org", org, "--name", "ci")
	if !strings.Contains(out2, "api_key: fl_live_") {
		t.Fatalf("key create printed %q", out2)
	}
	runOK("key", "revoke", "--id", keyID)
	keys := runOK("key", "list", "--org", org)
	if strings.Count(keys, "\n") != 3 || !strings.Contains(keys, keyID) {
		t.Fatalf("key list = %q", keys)
	}
	if strings.Contains(keys, key) {
		t.Fatal("key list shows a full key")
	}
	var errb bytes.Buffer
	if err := run(context.Background(), []string{"key", "revoke", "--id", "nope"}, env, &bytes.Buffer{}, &errb); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("revoking an unknown key: %v", err)
	}
}

// lockedBuffer is a log the server writes while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
