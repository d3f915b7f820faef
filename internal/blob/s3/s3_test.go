package s3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"go.uber.org/goleak"

	"github.com/parley-voice/parley/internal/blob"
	"github.com/parley-voice/parley/internal/blob/blobtest"
	"github.com/parley-voice/parley/internal/blob/s3"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	accessKey = "AKIATESTPARLEY"
	secretKey = "s3cr3t-never-printed-0123456789"
	bucket    = "parley-recordings"
)

// fake is an in-process S3 server. gofakes3 does not authenticate, so a
// small handler in front of it refuses requests signed with another access
// key, as a real server would.
//
// It serves HTTPS: over plain HTTP minio-go signs bodies with aws-chunked
// streaming signatures, which gofakes3 v1.2.0 decodes for a PUT but stores
// verbatim for the parts of a multipart upload (real servers decode both).
// TestPlainHTTP covers plain HTTP with single PUTs.
type fake struct {
	backend *s3mem.Backend
	server  *httptest.Server
	tls     bool
}

func newFake(t *testing.T) *fake { return newFakeServer(t, true) }

func newFakeServer(t *testing.T, tls bool) *fake {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	faker := gofakes3.New(backend, gofakes3.WithIntegrityCheck(true))
	inner := faker.Server()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		if !strings.Contains(auth, "Credential="+accessKey+"/") {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidAccessKeyId</Code>`+
				`<Message>The AWS Access Key Id you provided does not exist in our records.</Message></Error>`)
			return
		}
		inner.ServeHTTP(w, r)
	}))
	if tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return &fake{backend: backend, server: srv, tls: tls}
}

func (f *fake) config(t *testing.T) s3.Config {
	t.Helper()
	u, err := url.Parse(f.server.URL)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	if f.tls {
		tr = f.server.Client().Transport.(*http.Transport).Clone() // trusts the test certificate
	}
	t.Cleanup(tr.CloseIdleConnections)
	return s3.Config{
		Endpoint:        u.Host,
		Secure:          f.tls,
		Region:          "us-east-1",
		Bucket:          bucket,
		AccessKeyID:     accessKey,
		SecretAccessKey: secretKey,
		Transport:       tr,
	}
}

func newStore(t *testing.T, cfg s3.Config) *s3.Store {
	t.Helper()
	s, err := s3.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStore(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store {
		f := newFake(t)
		return newStore(t, f.config(t))
	})
}

func TestStoreWithPrefix(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store {
		f := newFake(t)
		cfg := f.config(t)
		cfg.Prefix = "tenant-a/parley/"
		return newStore(t, cfg)
	})
}

// TestPrefix: objects land under the prefix, and two stores with different
// prefixes in one bucket do not see each other's objects.
func TestPrefix(t *testing.T) {
	f := newFake(t)
	cfg := f.config(t)
	cfg.Prefix = "tenant-a/parley"
	a := newStore(t, cfg)
	cfg.Prefix = "tenant-b"
	b := newStore(t, cfg)
	ctx := context.Background()
	data := blobtest.Data(1, 1234)
	if err := a.Put(ctx, "recordings/o/c.wav", bytes.NewReader(data), int64(len(data)), "audio/wav"); err != nil {
		t.Fatal(err)
	}
	obj, err := f.backend.HeadObject(bucket, "tenant-a/parley/recordings/o/c.wav")
	if err != nil {
		t.Fatalf("the object is not under the prefix: %v", err)
	}
	if obj.Size != int64(len(data)) {
		t.Fatalf("stored %d bytes, want %d", obj.Size, len(data))
	}
	if _, err := b.Open(ctx, "recordings/o/c.wav"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("the other prefix sees the object: %v", err)
	}
	if _, err := f.backend.HeadObject(bucket, "recordings/o/c.wav"); err == nil {
		t.Fatal("the object was also stored without the prefix")
	}
	if err := b.Delete(ctx, "recordings/o/c.wav"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.backend.HeadObject(bucket, "tenant-a/parley/recordings/o/c.wav"); err != nil {
		t.Fatalf("a delete through the other prefix removed the object: %v", err)
	}
}

// TestLargeFileUpload: an *os.File larger than a part goes up in parts read
// with ReadAt, starting at the file's current offset; a plain reader of the
// same size in one streamed PUT.
func TestLargeFileUpload(t *testing.T) {
	f := newFake(t)
	s := newStore(t, f.config(t))
	ctx := context.Background()
	const n = 17<<20 + 123 // above minio-go's 16 MiB part size
	data := blobtest.Data(2, n)
	path := filepath.Join(t.TempDir(), "rec.wav")
	if err := os.WriteFile(path, append([]byte("JUNK"), data...), 0o600); err != nil {
		t.Fatal(err)
	}
	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	if _, err := file.Seek(4, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]io.Reader{
		"file":   file,
		"reader": struct{ io.Reader }{bytes.NewReader(data)},
	} {
		key := "big/" + name + ".wav"
		if err := s.Put(ctx, key, r, n, "audio/wav"); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		o, err := s.Open(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(o)
		o.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: read back %d bytes (%v), want the %d stored", name, len(got), err, n)
		}
	}
}

// TestWrongAccessKey: a refused key is an error that is neither "not found"
// nor a missing bucket, names the server's code, and never shows the secret.
func TestWrongAccessKey(t *testing.T) {
	f := newFake(t)
	cfg := f.config(t)
	cfg.AccessKeyID = "AKIAWRONG"
	s := newStore(t, cfg)
	ctx := context.Background()
	errs := map[string]error{"CheckBucket": s.CheckBucket(ctx)}
	errs["Put"] = s.Put(ctx, "a.wav", strings.NewReader("x"), 1, "")
	_, errs["Open"] = s.Open(ctx, "a.wav")
	errs["Delete"] = s.Delete(ctx, "a.wav")
	for op, err := range errs {
		if err == nil {
			t.Errorf("%s with a wrong key succeeded", op)
			continue
		}
		if errors.Is(err, blob.ErrNotFound) || errors.Is(err, s3.ErrNoBucket) {
			t.Errorf("%s: %v", op, err)
		}
		// A HEAD (CheckBucket, Open) has no body: minio-go calls any 403
		// AccessDenied.
		want := "InvalidAccessKeyId"
		if op == "CheckBucket" || op == "Open" {
			want = "AccessDenied"
		}
		var se *s3.Error
		if !errors.As(err, &se) || se.Code != want || se.Status != http.StatusForbidden {
			t.Errorf("%s: %v, want an s3.Error %s, HTTP 403", op, err, want)
		}
		if strings.Contains(err.Error(), secretKey) {
			t.Errorf("%s: the error shows the secret key: %v", op, err)
		}
	}
}

// TestMissingBucket: CheckBucket reports ErrNoBucket, EnsureBucket creates
// the bucket, and an operation on a missing bucket is not "not found".
func TestMissingBucket(t *testing.T) {
	f := newFake(t)
	cfg := f.config(t)
	cfg.Bucket = "not-there-yet"
	s := newStore(t, cfg)
	ctx := context.Background()
	if err := s.CheckBucket(ctx); !errors.Is(err, s3.ErrNoBucket) {
		t.Fatalf("CheckBucket: %v, want ErrNoBucket", err)
	}
	if _, err := s.Open(ctx, "a.wav"); !errors.Is(err, s3.ErrNoBucket) || errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Open in a missing bucket: %v, want ErrNoBucket", err)
	}
	if err := s.Put(ctx, "a.wav", strings.NewReader("x"), 1, ""); !errors.Is(err, s3.ErrNoBucket) {
		t.Fatalf("Put in a missing bucket: %v, want ErrNoBucket", err)
	}
	if err := s.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, _ := f.backend.BucketExists("not-there-yet"); !ok {
		t.Fatal("EnsureBucket did not create the bucket")
	}
	if err := s.CheckBucket(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureBucket(ctx); err != nil {
		t.Fatalf("EnsureBucket on an existing bucket: %v", err)
	}
	if err := s.Put(ctx, "a.wav", strings.NewReader("x"), 1, ""); err != nil {
		t.Fatal(err)
	}
}

// TestUnreachable: a server that is not there is an error, not "not found".
func TestUnreachable(t *testing.T) {
	f := newFake(t)
	cfg := f.config(t)
	f.server.Close()
	s := newStore(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // no retries against a closed port
	if err := s.CheckBucket(ctx); err == nil {
		t.Fatal("CheckBucket against a closed server succeeded")
	}
	if _, err := s.Open(ctx, "a.wav"); err == nil || errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Open against a closed server: %v", err)
	}
}

func TestNewRefusesInvalidConfig(t *testing.T) {
	good := s3.Config{Endpoint: "minio:9000", Bucket: "recordings", AccessKeyID: "AK", SecretAccessKey: secretKey}
	for _, ep := range []string{"minio:9000", "s3.eu-west-1.amazonaws.com", "[fd00::1]:9000", "10.0.0.5"} {
		cfg := good
		cfg.Endpoint = ep
		if _, err := s3.New(cfg); err != nil {
			t.Fatalf("valid endpoint %s refused: %v", ep, err)
		}
	}
	for name, edit := range map[string]func(*s3.Config){
		"no endpoint":        func(c *s3.Config) { c.Endpoint = "" },
		"scheme":             func(c *s3.Config) { c.Endpoint = "https://minio:9000" },
		"path":               func(c *s3.Config) { c.Endpoint = "minio:9000/bucket" },
		"userinfo":           func(c *s3.Config) { c.Endpoint = "user:" + secretKey + "@minio" },
		"scheme, userinfo":   func(c *s3.Config) { c.Endpoint = "https://user:" + secretKey + "@minio" },
		"bare IPv6":          func(c *s3.Config) { c.Endpoint = "fd00::1" },
		"bad port":           func(c *s3.Config) { c.Endpoint = "minio:99999999" },
		"no bucket":          func(c *s3.Config) { c.Bucket = "" },
		"bucket name":        func(c *s3.Config) { c.Bucket = "Recordings_2" },
		"no access key":      func(c *s3.Config) { c.AccessKeyID = "" },
		"no secret":          func(c *s3.Config) { c.SecretAccessKey = "" },
		"prefix dot-dot":     func(c *s3.Config) { c.Prefix = "a/../b" },
		"prefix leading '/'": func(c *s3.Config) { c.Prefix = "/a" },
		"prefix too long":    func(c *s3.Config) { c.Prefix = strings.Repeat("p/", 300) + "p" },
	} {
		cfg := good
		edit(&cfg)
		_, err := s3.New(cfg)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if strings.Contains(err.Error(), secretKey) {
			t.Errorf("%s: the error shows the secret key: %v", name, err)
		}
	}
}

// TestConfigHidesSecret: printing or logging a Config never shows the
// secret key.
func TestConfigHidesSecret(t *testing.T) {
	cfg := s3.Config{Endpoint: "minio:9000", Bucket: "b", AccessKeyID: "AK", SecretAccessKey: secretKey}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("blob store", "s3", cfg)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("blob store", "s3", cfg)
	for _, out := range []string{buf.String(), fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprintf("%v", &cfg)} {
		if strings.Contains(out, secretKey) {
			t.Errorf("secret shown: %s", out)
		}
		if !strings.Contains(out, "minio:9000") {
			t.Errorf("endpoint missing: %s", out)
		}
	}
}

// TestPlainHTTP: over plain HTTP (streaming-signed PUTs) objects go up and
// come back, ranges included.
func TestPlainHTTP(t *testing.T) {
	f := newFakeServer(t, false)
	s := newStore(t, f.config(t))
	ctx := context.Background()
	data := blobtest.Data(3, 200_000)
	if err := s.Put(ctx, "recordings/o/c.wav", bytes.NewReader(data), int64(len(data)), "audio/wav"); err != nil {
		t.Fatal(err)
	}
	o, err := s.Open(ctx, "recordings/o/c.wav")
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if o.Size() != int64(len(data)) || o.ContentType() != "audio/wav" {
		t.Fatalf("Size %d, ContentType %q", o.Size(), o.ContentType())
	}
	if _, err := o.Seek(150_000, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(o)
	if err != nil || !bytes.Equal(got, data[150_000:]) {
		t.Fatalf("read from 150000: %d bytes, %v", len(got), err)
	}
	if err := s.Delete(ctx, "recordings/o/c.wav"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(ctx, "recordings/o/c.wav"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("open after delete: %v", err)
	}
}
