// Package blobtest is the behavioural suite every blob.Store implementation
// runs in its tests.
package blobtest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/blob"
)

// Run runs the suite; open returns an empty store for each subtest.
func Run(t *testing.T, open func(t *testing.T) blob.Store) {
	for _, c := range []struct {
		name string
		fn   func(t *testing.T, s blob.Store)
	}{
		{"RoundTrip", roundTrip},
		{"Seek", seek},
		{"ServeContentRange", serveContentRange},
		{"Overwrite", overwrite},
		{"NotFound", notFound},
		{"Delete", deleteObject},
		{"InvalidKeys", invalidKeys},
		{"SizeIsExact", sizeIsExact},
		{"UnknownSize", unknownSize},
		{"Empty", empty},
		{"DefaultContentType", defaultContentType},
		{"InvalidContentType", invalidContentType},
		{"CanceledContext", canceledContext},
		{"ReaderError", readerError},
	} {
		t.Run(c.name, func(t *testing.T) { c.fn(t, open(t)) })
	}
}

// Data returns n pseudo-random bytes (the same for the same seed).
func Data(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n+8)
	for i := 0; i < n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], rng.Uint64())
	}
	return b[:n:n]
}

const key = "recordings/org_1/call-42.wav"

func put(t *testing.T, s blob.Store, key string, data []byte, ct string) {
	t.Helper()
	if err := s.Put(context.Background(), key, bytes.NewReader(data), int64(len(data)), ct); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

// read opens key and checks that it holds data with content type ct.
func read(t *testing.T, s blob.Store, key string, data []byte, ct string) {
	t.Helper()
	o, err := s.Open(context.Background(), key)
	if err != nil {
		t.Fatalf("open %s: %v", key, err)
	}
	defer o.Close()
	if o.Size() != int64(len(data)) {
		t.Errorf("%s: Size %d, want %d", key, o.Size(), len(data))
	}
	if o.ContentType() != ct {
		t.Errorf("%s: ContentType %q, want %q", key, o.ContentType(), ct)
	}
	got, err := io.ReadAll(o)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("%s: read %d bytes differing from the %d stored", key, len(got), len(data))
	}
}

func missing(t *testing.T, s blob.Store, key string) {
	t.Helper()
	o, err := s.Open(context.Background(), key)
	if err == nil {
		o.Close()
		t.Fatalf("open %s: found, want ErrNotFound", key)
	}
	if !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("open %s: %v, want ErrNotFound", key, err)
	}
}

func roundTrip(t *testing.T, s blob.Store) {
	data := Data(1, 100_000)
	put(t, s, key, data, "audio/wav")
	read(t, s, key, data, "audio/wav")
	o, err := s.Open(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if d := time.Since(o.ModTime()); d < -time.Hour || d > time.Hour {
		t.Errorf("ModTime %v is not about now", o.ModTime())
	}
	// Keys differing in one segment are different objects.
	other := Data(2, 10)
	put(t, s, "recordings/org_2/call-42.wav", other, "audio/wav")
	read(t, s, key, data, "audio/wav")
	read(t, s, "recordings/org_2/call-42.wav", other, "audio/wav")
	put(t, s, longKey(), other, "audio/wav")
	read(t, s, longKey(), other, "audio/wav")
}

func seek(t *testing.T, s blob.Store) {
	data := Data(3, 50_000)
	put(t, s, key, data, "audio/wav")
	o, err := s.Open(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	buf := make([]byte, 100)
	for _, c := range []struct {
		off    int64
		whence int
		want   int64
	}{
		{1000, io.SeekStart, 1000},
		{-100, io.SeekEnd, 49_900},
		{-30_000, io.SeekCurrent, 20_000}, // after reading 100 bytes at 49 900
		{0, io.SeekStart, 0},
	} {
		pos, err := o.Seek(c.off, c.whence)
		if err != nil || pos != c.want {
			t.Fatalf("Seek(%d, %d) = %d, %v; want %d", c.off, c.whence, pos, err, c.want)
		}
		if _, err := io.ReadFull(o, buf); err != nil {
			t.Fatalf("read at %d: %v", pos, err)
		}
		if !bytes.Equal(buf, data[pos:pos+100]) {
			t.Fatalf("read at %d: wrong bytes", pos)
		}
	}
	if end, err := o.Seek(0, io.SeekEnd); err != nil || end != int64(len(data)) {
		t.Fatalf("Seek to end = %d, %v", end, err)
	}
	if n, err := o.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("read at the end: %d, %v; want 0, EOF", n, err)
	}
}

// serveContentRange serves an object the way the HTTP API will.
func serveContentRange(t *testing.T, s blob.Store) {
	data := Data(4, 64_000)
	put(t, s, key, data, "audio/wav")
	serve := func(rangeHeader string) *httptest.ResponseRecorder {
		o, err := s.Open(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		req := httptest.NewRequest(http.MethodGet, "/recording.wav", nil)
		if rangeHeader != "" {
			req.Header.Set("Range", rangeHeader)
		}
		w := httptest.NewRecorder()
		w.Header().Set("Content-Type", o.ContentType())
		http.ServeContent(w, req, "recording.wav", o.ModTime(), o)
		return w
	}
	w := serve("bytes=1000-1999")
	if w.Code != http.StatusPartialContent {
		t.Fatalf("status %d, want 206", w.Code)
	}
	if got := w.Header().Get("Content-Range"); got != fmt.Sprintf("bytes 1000-1999/%d", len(data)) {
		t.Errorf("Content-Range %q", got)
	}
	if w.Header().Get("Content-Type") != "audio/wav" {
		t.Errorf("Content-Type %q", w.Header().Get("Content-Type"))
	}
	if !bytes.Equal(w.Body.Bytes(), data[1000:2000]) {
		t.Fatalf("range body: %d bytes, not the stored ones", w.Body.Len())
	}
	w = serve("bytes=-500")
	if w.Code != http.StatusPartialContent || !bytes.Equal(w.Body.Bytes(), data[len(data)-500:]) {
		t.Fatalf("suffix range: status %d, %d bytes", w.Code, w.Body.Len())
	}
	w = serve("")
	if w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), data) {
		t.Fatalf("whole object: status %d, %d bytes", w.Code, w.Body.Len())
	}
	if w.Header().Get("Content-Length") != fmt.Sprint(len(data)) {
		t.Errorf("Content-Length %q", w.Header().Get("Content-Length"))
	}
}

func overwrite(t *testing.T, s blob.Store) {
	put(t, s, key, Data(5, 1000), "audio/wav")
	second := Data(6, 700)
	put(t, s, key, second, "audio/mpeg")
	read(t, s, key, second, "audio/mpeg")
	third := Data(7, 10)
	put(t, s, key, third, "")
	read(t, s, key, third, blob.DefaultContentType)
}

func notFound(t *testing.T, s blob.Store) {
	missing(t, s, key)
	put(t, s, key, Data(8, 10), "audio/wav")
	missing(t, s, "recordings/org_1/call-43.wav")
	missing(t, s, "recordings/org_1") // a "directory" is not an object
	missing(t, s, "recordings/org_1/call-42.wav/x")
}

func deleteObject(t *testing.T, s blob.Store) {
	ctx := context.Background()
	put(t, s, key, Data(9, 10), "audio/wav")
	keep := "recordings/org_1/call-44.wav"
	put(t, s, keep, Data(10, 10), "audio/wav")
	if err := s.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	missing(t, s, key)
	read(t, s, keep, Data(10, 10), "audio/wav")
	if err := s.Delete(ctx, key); err != nil {
		t.Fatalf("deleting again: %v", err)
	}
	if err := s.Delete(ctx, "never/was.wav"); err != nil {
		t.Fatalf("deleting a key never stored: %v", err)
	}
	if err := s.Delete(ctx, "recordings/org_1"); err != nil {
		t.Fatalf("deleting a \"directory\": %v", err)
	}
	read(t, s, keep, Data(10, 10), "audio/wav")
	// Stored again after a delete, with a new content type.
	put(t, s, key, Data(11, 20), "text/plain; charset=utf-8")
	read(t, s, key, Data(11, 20), "text/plain; charset=utf-8")
}

// BadKeys are keys every Store refuses.
var BadKeys = []string{
	"",
	"/recordings/a.wav",
	"recordings//a.wav",
	"recordings/a.wav/",
	"recordings/../a.wav",
	"../a.wav",
	"recordings/./a.wav",
	"..",
	"recordings\\a.wav",
	"recordings/.hidden",
	".tmp-123",
	"recordings/a\x00.wav",
	"recordings/a\n.wav",
	"recordings/\xff.wav",
	strings.Repeat("a", blob.MaxKeyLength+1),
	"a/" + strings.Repeat("b", 256),
}

func invalidKeys(t *testing.T, s blob.Store) {
	ctx := context.Background()
	for _, k := range BadKeys {
		if err := blob.CheckKey(k); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("CheckKey(%q) = %v", k, err)
		}
		if err := s.Put(ctx, k, strings.NewReader("x"), 1, ""); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("Put(%q) = %v, want ErrInvalidKey", k, err)
		}
		if _, err := s.Open(ctx, k); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("Open(%q) = %v, want ErrInvalidKey", k, err)
		}
		if err := s.Delete(ctx, k); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("Delete(%q) = %v, want ErrInvalidKey", k, err)
		}
	}
	for _, k := range []string{"a", "recordings/org_1/call.wav", "a.b/c-d_e/f g/é.wav", longKey()} {
		if err := blob.CheckKey(k); err != nil {
			t.Errorf("CheckKey(%q) = %v", k, err)
		}
	}
}

// longKey is a valid key of MaxKeyLength bytes.
func longKey() string {
	k := strings.Repeat(strings.Repeat("k", 99)+"/", blob.MaxKeyLength/100)
	return k + strings.Repeat("z", blob.MaxKeyLength-len(k))
}

// sizeIsExact: a reader ending before size is an error that stores nothing
// (the previous object stays); one with more than size bytes is read only
// up to size.
func sizeIsExact(t *testing.T, s blob.Store) {
	ctx := context.Background()
	first := Data(12, 100)
	put(t, s, key, first, "audio/wav")
	err := s.Put(ctx, key, bytes.NewReader(Data(13, 50)), 100, "audio/wav")
	if err == nil {
		t.Fatal("put of 50 bytes announced as 100 succeeded")
	}
	read(t, s, key, first, "audio/wav")
	if err := s.Put(ctx, "short/new.wav", bytes.NewReader(Data(13, 50)), 100, "audio/wav"); err == nil {
		t.Fatal("put of 50 bytes announced as 100 succeeded")
	}
	missing(t, s, "short/new.wav")
	long := Data(14, 300)
	if err := s.Put(ctx, key, bytes.NewReader(long), 200, "audio/wav"); err != nil {
		t.Fatal(err)
	}
	read(t, s, key, long[:200], "audio/wav")
}

func unknownSize(t *testing.T, s blob.Store) {
	data := Data(15, 70_000)
	// Hide everything but Read, so the store cannot learn the size.
	r := struct{ io.Reader }{bytes.NewReader(data)}
	if err := s.Put(context.Background(), key, r, -1, "audio/wav"); err != nil {
		t.Fatal(err)
	}
	read(t, s, key, data, "audio/wav")
}

func empty(t *testing.T, s blob.Store) {
	put(t, s, key, nil, "audio/wav")
	read(t, s, key, []byte{}, "audio/wav")
}

func defaultContentType(t *testing.T, s blob.Store) {
	put(t, s, "files/x.bin", Data(16, 10), "")
	read(t, s, "files/x.bin", Data(16, 10), blob.DefaultContentType)
}

func invalidContentType(t *testing.T, s blob.Store) {
	for _, ct := range []string{"not a type", "audio/wav\r\nX-Evil: 1", strings.Repeat("a", 300) + "/b"} {
		if err := s.Put(context.Background(), key, strings.NewReader("x"), 1, ct); err == nil {
			t.Errorf("Put with content type %q succeeded", ct)
		}
	}
	missing(t, s, key)
}

func canceledContext(t *testing.T, s blob.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Put(ctx, key, strings.NewReader("x"), 1, ""); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a canceled context: %v", err)
	}
	missing(t, s, key)
	// Canceled half way through the body, which goes on.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	r := &cancelAfter{r: bytes.NewReader(Data(17, 100_000)), n: 30_000, cancel: cancel}
	if err := s.Put(ctx, key, r, 100_000, ""); err == nil {
		t.Error("Put canceled half way succeeded")
	}
	missing(t, s, key)
}

// cancelAfter cancels its context once n bytes have been read, and goes on.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n -= n; c.n <= 0 {
		c.cancel()
	}
	return n, err
}

// readerError: a reader failing half way stores nothing.
func readerError(t *testing.T, s blob.Store) {
	first := Data(18, 10)
	put(t, s, key, first, "audio/wav")
	r := io.MultiReader(bytes.NewReader(Data(19, 40_000)), errReader{})
	for _, size := range []int64{100_000, -1} {
		if err := s.Put(context.Background(), key, r, size, "audio/mpeg"); err == nil {
			t.Fatalf("Put (size %d) from a failing reader succeeded", size)
		}
		read(t, s, key, first, "audio/wav")
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }
