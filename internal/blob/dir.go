package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Dir is a Store in a local directory: the object under "a/b/c.wav" is the
// file <root>/a/b/c.wav. Directories are created with mode 0700 and files
// with mode 0600. Put writes a temporary file next to the object's, syncs it
// and renames it into place, so a reader never sees a partial object. A
// content type other than DefaultContentType is kept in a sidecar file,
// <root>/a/b/.c.wav.type (keys cannot start a segment with '.', so sidecars
// and temporary files never collide with objects).
//
// A key cannot name both an object and a "directory" of other objects ("a"
// and "a/b"); Put fails for the second one. Empty directories are left behind
// by Delete.
type Dir struct {
	root string
}

var _ Store = (*Dir)(nil)

// NewDir returns the Store in root, creating the directory (mode 0700) if
// missing.
func NewDir(root string) (*Dir, error) {
	if root == "" {
		return nil, errors.New("blob: no directory given")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("blob: directory %s: %w", root, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("blob: creating directory: %w", err)
	}
	return &Dir{root: abs}, nil
}

// Root is the directory the objects are in.
func (d *Dir) Root() string { return d.root }

// path returns the file of key and of its content type.
func (d *Dir) path(key string) (data, meta string, err error) {
	if err := CheckKey(key); err != nil {
		return "", "", err
	}
	rel := filepath.FromSlash(key)
	if !filepath.IsLocal(rel) {
		return "", "", fmt.Errorf("%w %q: not a local path", ErrInvalidKey, key)
	}
	data = filepath.Join(d.root, rel)
	dir, name := filepath.Split(data)
	return data, filepath.Join(dir, "."+name+".type"), nil
}

// Put implements Store.
func (d *Dir) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	path, meta, err := d.path(key)
	if err != nil {
		return fmt.Errorf("blob: put: %w", err)
	}
	if err := CheckContentType(contentType); err != nil {
		return fmt.Errorf("blob: put %s: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blob: put %s: %w", key, err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("blob: put %s: %w", key, err)
	}
	tmp, err := writeTemp(dir, ContextReader(ctx, r), size)
	if err != nil {
		return fmt.Errorf("blob: put %s: %w", key, err)
	}
	renamed := false
	defer func() {
		if !renamed {
			os.Remove(tmp)
		}
	}()
	// The content type goes first: a reader between the two renames sees
	// the old data with the new type, never the new data with the old.
	if contentType == "" || contentType == DefaultContentType {
		if err := os.Remove(meta); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("blob: put %s: removing content type: %w", key, err)
		}
	} else {
		mtmp, err := writeTemp(dir, strings.NewReader(contentType), int64(len(contentType)))
		if err != nil {
			return fmt.Errorf("blob: put %s: content type: %w", key, err)
		}
		if err := os.Rename(mtmp, meta); err != nil {
			os.Remove(mtmp)
			return fmt.Errorf("blob: put %s: content type: %w", key, err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("blob: put %s: %w", key, err)
	}
	renamed = true
	syncDir(dir)
	return nil
}

// writeTemp copies r (exactly size bytes, or to EOF when size < 0) into a
// new synced temporary file in dir and returns its name.
func writeTemp(dir string, r io.Reader, size int64) (name string, err error) {
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if size >= 0 {
		n, err := io.CopyN(f, r, size)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("read %d of %d bytes: %w", n, size, io.ErrUnexpectedEOF)
			}
			return "", err
		}
	} else if _, err := io.Copy(f, r); err != nil {
		return "", err
	}
	if err := f.Sync(); err != nil {
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return f.Name(), nil
}

// syncDir makes renames in dir durable (best effort: not every platform
// can sync a directory).
func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		_ = f.Sync()
		f.Close()
	}
}

// ContextReader reads r until ctx ends, then fails with ctx's error: an
// upload whose context is cancelled stops mid-body instead of storing it.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return &ctxReader{ctx: ctx, r: r} }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// notFound reports whether err from opening or removing a path means there
// is nothing there (a missing file, or a missing directory on the way, or a
// file where a directory would be).
func notFound(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// Open implements Store.
func (d *Dir) Open(ctx context.Context, key string) (Object, error) {
	path, meta, err := d.path(key)
	if err != nil {
		return nil, fmt.Errorf("blob: open: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("blob: open %s: %w", key, err)
	}
	f, err := os.Open(path)
	if notFound(err) {
		return nil, fmt.Errorf("blob: open %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("blob: open %s: %w", key, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("blob: open %s: %w", key, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("blob: open %s: %w", key, ErrNotFound)
	}
	ct := DefaultContentType
	if b, err := readSmall(meta); err == nil && CheckContentType(string(b)) == nil && len(b) > 0 {
		ct = string(b)
	} else if err != nil && !notFound(err) {
		f.Close()
		return nil, fmt.Errorf("blob: open %s: content type: %w", key, err)
	}
	return &file{f: f, size: st.Size(), mod: st.ModTime(), ct: ct}, nil
}

// readSmall reads a sidecar file of at most 256 bytes.
func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 256))
}

// Delete implements Store.
func (d *Dir) Delete(ctx context.Context, key string) error {
	path, meta, err := d.path(key)
	if err != nil {
		return fmt.Errorf("blob: delete: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("blob: delete %s: %w", key, err)
	}
	st, err := os.Lstat(path)
	if notFound(err) || (err == nil && st.IsDir()) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("blob: delete %s: %w", key, err)
	}
	if err := os.Remove(path); err != nil && !notFound(err) {
		return fmt.Errorf("blob: delete %s: %w", key, err)
	}
	if err := os.Remove(meta); err != nil && !notFound(err) {
		return fmt.Errorf("blob: delete %s: content type: %w", key, err)
	}
	return nil
}

// file is an object in a Dir.
type file struct {
	f    *os.File
	size int64
	mod  time.Time
	ct   string
}

func (o *file) Read(p []byte) (int, error)                   { return o.f.Read(p) }
func (o *file) ReadAt(p []byte, off int64) (int, error)      { return o.f.ReadAt(p, off) }
func (o *file) Seek(offset int64, whence int) (int64, error) { return o.f.Seek(offset, whence) }
func (o *file) Close() error                                 { return o.f.Close() }
func (o *file) Size() int64                                  { return o.size }
func (o *file) ModTime() time.Time                           { return o.mod }
func (o *file) ContentType() string                          { return o.ct }
