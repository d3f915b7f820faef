package blob_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/parley-voice/parley/internal/blob"
	"github.com/parley-voice/parley/internal/blob/blobtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newDir(t *testing.T) *blob.Dir {
	t.Helper()
	d, err := blob.NewDir(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDir(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store { return newDir(t) })
}

// TestDirLayout: objects are plain files at their key's path, mode 0600 in
// directories of mode 0700, with no temporary files left behind.
func TestDirLayout(t *testing.T) {
	d := newDir(t)
	data := blobtest.Data(1, 1000)
	if err := d.Put(context.Background(), "recordings/org/c.wav", bytes.NewReader(data), 1000, "audio/wav"); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(d.Root(), "recordings", "org", "c.wav")
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("%s: %v", path, err)
	}
	err = filepath.WalkDir(d.Root(), func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		st, err := e.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if e.IsDir() {
			want = 0o700
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, st.Mode().Perm(), want)
		}
		if strings.HasPrefix(e.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(context.Background(), "recordings/org/c.wav"); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 0 {
		t.Fatalf("after Delete the directory holds %v", ents)
	}
}

// TestDirReaderNeverSeesHalfAnObject: while a Put is half way through its
// body, Open returns the previous object, whole; then the new one.
func TestDirReaderNeverSeesHalfAnObject(t *testing.T) {
	d := newDir(t)
	ctx := context.Background()
	old := blobtest.Data(2, 5000)
	if err := d.Put(ctx, "a/b.wav", bytes.NewReader(old), int64(len(old)), "audio/wav"); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- d.Put(ctx, "a/b.wav", pr, 10_000, "audio/mpeg") }()
	fresh := blobtest.Data(3, 10_000)
	if _, err := pw.Write(fresh[:6000]); err != nil { // consumed by Put: it is mid-copy
		t.Fatal(err)
	}
	check := func(want []byte, ct string) {
		t.Helper()
		o, err := d.Open(ctx, "a/b.wav")
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		got, _ := io.ReadAll(o)
		if !bytes.Equal(got, want) || o.Size() != int64(len(want)) || o.ContentType() != ct {
			t.Fatalf("read %d bytes (Size %d, %s), want %d (%s)", len(got), o.Size(), o.ContentType(), len(want), ct)
		}
	}
	check(old, "audio/wav")
	if _, err := pw.Write(fresh[6000:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	check(fresh, "audio/mpeg")
}

// TestDirKeyConflicts: a key that would need a file where a directory is
// (or the reverse) fails cleanly and leaves both objects alone.
func TestDirKeyConflicts(t *testing.T) {
	d := newDir(t)
	ctx := context.Background()
	if err := d.Put(ctx, "a/b", strings.NewReader("x"), 1, ""); err != nil {
		t.Fatal(err)
	}
	if err := d.Put(ctx, "a", strings.NewReader("y"), 1, ""); err == nil {
		t.Fatal("put of a key naming a directory succeeded")
	}
	if err := d.Put(ctx, "a/b/c", strings.NewReader("z"), 1, ""); err == nil {
		t.Fatal("put under a key naming a file succeeded")
	}
	o, err := d.Open(ctx, "a/b")
	if err != nil {
		t.Fatal(err)
	}
	o.Close()
	if _, err := d.Open(ctx, "a/b/c"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("open under a file: %v", err)
	}
	if err := d.Delete(ctx, "a/b/c"); err != nil {
		t.Fatalf("delete under a file: %v", err)
	}
}

func TestNewDir(t *testing.T) {
	if _, err := blob.NewDir(""); err == nil {
		t.Fatal("NewDir(\"\") succeeded")
	}
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := blob.NewDir(file); err == nil {
		t.Fatal("NewDir on a file succeeded")
	}
	d, err := blob.NewDir(filepath.Join(t.TempDir(), "x", "y"))
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(d.Root()); err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
		t.Fatalf("root %s: %v %v", d.Root(), st, err)
	}
}
