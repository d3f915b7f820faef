package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

// TestSMTPSettings: SMTP settings that cannot work stop the server at start
// with the setting named, and the password is never echoed.
func TestSMTPSettings(t *testing.T) {
	dir := t.TempDir()
	host := "PARLEY_SMTP_HOST=smtp.example.com"
	from := "PARLEY_SMTP_FROM=Parley <calls@example.com>"
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{"host without from", []string{host}, "PARLEY_SMTP_FROM"},
		{"bad from", []string{host, "PARLEY_SMTP_FROM=calls at example"}, "PARLEY_SMTP_FROM"},
		{"bad tls mode", []string{host, from, "PARLEY_SMTP_TLS=ssl"}, "PARLEY_SMTP_TLS"},
		{"bad port", []string{host, from, "PARLEY_SMTP_PORT=70000"}, "PARLEY_SMTP_PORT"},
		{"bad auth", []string{host, from, "PARLEY_SMTP_AUTH=xoauth2"}, "PARLEY_SMTP_AUTH"},
		{"short timeout", []string{host, from, "PARLEY_SMTP_TIMEOUT=10ms"}, "PARLEY_SMTP_TIMEOUT"},
		{"missing ca", []string{host, from, "PARLEY_SMTP_CA=/nonexistent/ca.pem"}, "PARLEY_SMTP_CA"},
		{"selector without key", []string{host, from, "PARLEY_SMTP_DKIM_SELECTOR=s1"}, "PARLEY_SMTP_DKIM_KEY_FILE"},
		{"missing key", []string{host, from, "PARLEY_SMTP_DKIM_SELECTOR=s1", "PARLEY_SMTP_DKIM_KEY_FILE=/nonexistent/k.pem"}, "PARLEY_SMTP_DKIM_KEY_FILE"},
		{"password in clear", []string{host, from, "PARLEY_SMTP_TLS=none", "PARLEY_SMTP_USERNAME=u", "PARLEY_SMTP_PASSWORD=hunter2"}, "PARLEY_SMTP_TLS=none"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := append([]string{"PARLEY_DATA_DIR=" + dir}, tc.env...)
			var out, errb bytes.Buffer
			err := run(context.Background(), []string{"migrate"}, env, &out, &errb)
			if err == nil || !strings.Contains(err.Error()+errb.String(), tc.want) {
				t.Fatalf("err = %v (stderr %q), want it to mention %q", err, errb.String(), tc.want)
			}
			if strings.Contains(err.Error()+errb.String(), "hunter2") {
				t.Fatalf("password echoed: %v", err)
			}
		})
	}
	// A key file that is no key stops serve.
	bad := dir + "/not-a-key.pem"
	if err := os.WriteFile(bad, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"serve"}, []string{"PARLEY_DATA_DIR=" + dir, "PARLEY_HTTP_ADDR=127.0.0.1:0", "PARLEY_SIP_ADDR=off",
		host, from, "PARLEY_SMTP_DKIM_SELECTOR=s1", "PARLEY_SMTP_DKIM_KEY_FILE=" + bad}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "PARLEY_SMTP_DKIM_KEY_FILE") {
		t.Fatalf("serve with a bad DKIM key: %v", err)
	}
}
