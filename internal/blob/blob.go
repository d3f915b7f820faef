// Package blob stores named objects (call recordings, and later other files)
// behind one small interface, Store, with two implementations: Dir, a
// directory on local disk, and the s3 subpackage, any S3-compatible object
// store.
//
// Keys are slash-separated relative paths such as
// "recordings/<org>/<call>.wav". CheckKey says which are accepted; every Store
// refuses the others with ErrInvalidKey, so a key can never name something
// outside the store.
package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"
	"time"
	"unicode/utf8"
)

// DefaultContentType is the content type of an object stored without one.
const DefaultContentType = "application/octet-stream"

// MaxKeyLength is the longest key accepted, in bytes.
const MaxKeyLength = 512

var (
	// ErrNotFound is returned (wrapped) by Open for a key that holds no
	// object.
	ErrNotFound = errors.New("object not found")
	// ErrInvalidKey is returned (wrapped) for a key CheckKey refuses.
	ErrInvalidKey = errors.New("invalid object key")
)

// Store keeps named objects.
type Store interface {
	// Put stores the object read from r under key, replacing any object
	// already there; readers see the old object or the new one, never part
	// of one. size is the object's length: exactly size bytes are read from
	// r (an r that ends sooner is an error and stores nothing); a negative
	// size means unknown, r is read to EOF. contentType is a MIME type, ""
	// for DefaultContentType.
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
	// Open returns the object under key, ErrNotFound (errors.Is) when there
	// is none. The caller closes it. The Object can be given to
	// http.ServeContent.
	Open(ctx context.Context, key string) (Object, error)
	// Delete removes the object under key; deleting a missing key is not an
	// error.
	Delete(ctx context.Context, key string) error
}

// Object is a stored object, open for reading.
type Object interface {
	io.ReadSeekCloser
	Size() int64
	ModTime() time.Time
	ContentType() string
}

// CheckKey reports whether key is acceptable: 1 to MaxKeyLength bytes of
// UTF-8 without control characters or backslashes, split by '/' into
// non-empty segments of at most 255 bytes (so no leading, trailing or
// doubled '/'), none of them "." or "..", none starting with '.' (names starting with '.' are reserved
// for the stores' own files). The error wraps ErrInvalidKey.
func CheckKey(key string) error {
	bad := func(why string) error { return fmt.Errorf("%w %q: %s", ErrInvalidKey, key, why) }
	switch {
	case key == "":
		return fmt.Errorf("%w: empty key", ErrInvalidKey)
	case len(key) > MaxKeyLength:
		return fmt.Errorf("%w: %d bytes (at most %d)", ErrInvalidKey, len(key), MaxKeyLength)
	case !utf8.ValidString(key):
		return bad("not UTF-8")
	case strings.HasPrefix(key, "/"):
		return bad("leading '/'")
	case strings.ContainsRune(key, '\\'):
		return bad("backslash")
	}
	for _, c := range key {
		if c < 0x20 || c == 0x7f {
			return bad("control character")
		}
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch {
		case seg == "":
			return bad("empty segment")
		case seg == "." || seg == "..":
			return bad("'.' or '..' segment")
		case strings.HasPrefix(seg, "."):
			return bad("segment starting with '.'")
		case len(seg) > 255:
			return bad("segment longer than 255 bytes")
		}
	}
	return nil
}

// CheckContentType reports whether ct is acceptable for Put: empty, or a
// media type (with parameters) of at most 255 bytes.
func CheckContentType(ct string) error {
	if ct == "" {
		return nil
	}
	if len(ct) > 255 {
		return fmt.Errorf("content type of %d bytes (at most 255)", len(ct))
	}
	if _, _, err := mime.ParseMediaType(ct); err != nil {
		return fmt.Errorf("content type %q: %w", ct, err)
	}
	return nil
}
