// Package s3 is a blob.Store in any S3-compatible object store (Amazon S3,
// MinIO, Ceph RGW, Garage, Cloudflare R2, …), through minio-go.
//
// New only checks the configuration; it does not talk to the server. Call
// CheckBucket at startup to learn early that the endpoint, the credentials or
// the bucket are wrong, or EnsureBucket to create the bucket when it is
// missing (a self-hosted MinIO, with keys allowed to create buckets).
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/parley-voice/parley/internal/blob"
)

// ErrNoBucket is returned (wrapped) when the configured bucket does not
// exist.
var ErrNoBucket = errors.New("bucket does not exist")

// unknownSizePart is the part size of uploads of unknown size: each part is
// buffered in memory, so it is the smallest S3 accepts (objects up to
// 10 000 parts, 48 GiB).
const unknownSizePart = 5 << 20

// Config says where objects are stored. Its String and LogValue methods
// leave out the secret key.
type Config struct {
	// Endpoint is the server's host:port, without a scheme
	// ("s3.eu-west-1.amazonaws.com", "minio.internal:9000").
	Endpoint string
	// Secure selects HTTPS.
	Secure bool
	// Region is the bucket's region; empty lets the client ask the server.
	Region string
	// Bucket holds the objects.
	Bucket string
	// AccessKeyID and SecretAccessKey are the credentials (both required).
	AccessKeyID     string
	SecretAccessKey string
	// Prefix, when set, is put before every key, followed by '/'
	// ("parley/prod" stores "recordings/a.wav" as
	// "parley/prod/recordings/a.wav"). It follows the rules of blob.CheckKey;
	// a trailing '/' is ignored.
	Prefix string
	// VirtualHostStyle addresses the bucket as <bucket>.<endpoint>; by
	// default (false) requests use path-style addressing
	// (<endpoint>/<bucket>/<key>), which MinIO and most self-hosted servers
	// need.
	VirtualHostStyle bool
	// Transport, when set, replaces the default HTTP transport (a private CA,
	// a proxy, tests).
	Transport http.RoundTripper
}

// String describes the configuration without the secret key.
func (c Config) String() string {
	scheme := "http"
	if c.Secure {
		scheme = "https"
	}
	return fmt.Sprintf("s3 %s://%s bucket %q prefix %q region %q access key %q", scheme, c.Endpoint, c.Bucket, c.Prefix, c.Region, c.AccessKeyID)
}

// GoString is String, so %#v does not print the secret key either.
func (c Config) GoString() string { return c.String() }

// LogValue describes the configuration to slog without the secret key.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("endpoint", c.Endpoint),
		slog.Bool("secure", c.Secure),
		slog.String("region", c.Region),
		slog.String("bucket", c.Bucket),
		slog.String("prefix", c.Prefix),
		slog.String("access_key_id", c.AccessKeyID),
		slog.Bool("virtual_host_style", c.VirtualHostStyle),
	)
}

// Store is a blob.Store in one bucket.
type Store struct {
	client *minio.Client
	bucket string
	prefix string // "" or ending in '/'
	region string
}

var _ blob.Store = (*Store)(nil)

// New checks cfg and returns a Store; it makes no request.
func New(cfg Config) (*Store, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("s3: invalid configuration: %w", err)
	}
	lookup := minio.BucketLookupPath
	if cfg.VirtualHostStyle {
		lookup = minio.BucketLookupDNS
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKeyID, cfg.SecretAccessKey, ""),
		Secure:       cfg.Secure,
		Region:       cfg.Region,
		BucketLookup: lookup,
		Transport:    cfg.Transport,
	})
	if err != nil {
		return nil, fmt.Errorf("s3: invalid configuration: endpoint %q: %w", cfg.Endpoint, err)
	}
	prefix := strings.TrimSuffix(cfg.Prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	return &Store{client: client, bucket: cfg.Bucket, prefix: prefix, region: cfg.Region}, nil
}

func (c Config) validate() error {
	switch {
	case c.Endpoint == "":
		return errors.New("no endpoint")
	case strings.Contains(c.Endpoint, "@"):
		// Not echoed: it may hold a password.
		return errors.New("endpoint: credentials belong in AccessKeyID and SecretAccessKey, not in the endpoint")
	case strings.Contains(c.Endpoint, "://"):
		return fmt.Errorf("endpoint %q: give host:port without a scheme (Secure selects https)", c.Endpoint)
	case strings.ContainsAny(c.Endpoint, "/?# "):
		return fmt.Errorf("endpoint %q: want host or host:port", c.Endpoint)
	case c.Bucket == "":
		return errors.New("no bucket")
	case c.AccessKeyID == "" || c.SecretAccessKey == "":
		return errors.New("access key id and secret access key are both required")
	}
	if _, port, err := net.SplitHostPort(c.Endpoint); err == nil {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("endpoint %q: invalid port", c.Endpoint)
		}
	} else if strings.Contains(strings.Trim(c.Endpoint, "[]"), ":") && !strings.HasPrefix(c.Endpoint, "[") {
		return fmt.Errorf("endpoint %q: want host or host:port (an IPv6 address in brackets)", c.Endpoint)
	}
	if err := s3utils.CheckValidBucketNameStrict(c.Bucket); err != nil {
		return fmt.Errorf("bucket %q: %w", c.Bucket, err)
	}
	if p := strings.TrimSuffix(c.Prefix, "/"); p != "" {
		if err := blob.CheckKey(p); err != nil {
			return fmt.Errorf("prefix: %w", err)
		}
		if len(p)+1+blob.MaxKeyLength > 1024 {
			return fmt.Errorf("prefix %q: too long (S3 keys are at most 1024 bytes)", p)
		}
	}
	return nil
}

// Bucket is the bucket the objects are in.
func (s *Store) Bucket() string { return s.bucket }

// CheckBucket asks the server whether the bucket exists and the credentials
// may use it: ErrNoBucket (wrapped) when it does not exist, another error
// when the server is unreachable or refuses the credentials.
func (s *Store) CheckBucket(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("s3: checking bucket %s: %w", s.bucket, describe(err))
	}
	if !ok {
		return fmt.Errorf("s3: bucket %s: %w", s.bucket, ErrNoBucket)
	}
	return nil
}

// EnsureBucket creates the bucket (in the configured region) unless it
// exists.
func (s *Store) EnsureBucket(ctx context.Context) error {
	err := s.CheckBucket(ctx)
	if !errors.Is(err, ErrNoBucket) {
		return err
	}
	if err := s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: s.region}); err != nil {
		if code := errorCode(err); code == "BucketAlreadyOwnedByYou" {
			return nil // created meanwhile
		}
		return fmt.Errorf("s3: creating bucket %s: %w", s.bucket, describe(err))
	}
	return nil
}

// object returns the object name of key.
func (s *Store) object(key string) (string, error) {
	if err := blob.CheckKey(key); err != nil {
		return "", err
	}
	return s.prefix + key, nil
}

// Put implements blob.Store. With a known size the body is streamed: from a
// reader that is also an io.ReaderAt and io.Seeker (an *os.File) in parallel
// parts above 16 MiB, from any other reader in a single PUT. With an unknown
// size it is sent in parts of 5 MiB, each buffered in memory.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	name, err := s.object(key)
	if err != nil {
		return fmt.Errorf("s3: put: %w", err)
	}
	if err := blob.CheckContentType(contentType); err != nil {
		return fmt.Errorf("s3: put %s: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3: put %s: %w", key, err)
	}
	if contentType == "" {
		contentType = blob.DefaultContentType
	}
	opts := minio.PutObjectOptions{ContentType: contentType}
	// The body stops at ctx's end, so a canceled Put stores nothing even
	// when the HTTP request would otherwise have completed.
	switch ra, ok := r.(interface {
		io.ReaderAt
		io.Seeker
	}); {
	case size < 0:
		opts.PartSize = unknownSizePart
		r = blob.ContextReader(ctx, r)
	case size == 0:
		r = bytes.NewReader(nil) // sent with "Content-Length: 0"
	case ok:
		// Exactly size bytes from the current offset, whichever way
		// minio-go reads them (parts through ReadAt, or Read), and seekable
		// so that minio-go can retry.
		off, err := ra.Seek(0, io.SeekCurrent)
		if err != nil {
			return fmt.Errorf("s3: put %s: %w", key, err)
		}
		// A short reader would only fail after every retry: look first.
		var last [1]byte
		if n, _ := ra.ReadAt(last[:], off+size-1); n != 1 {
			return fmt.Errorf("s3: put %s: the reader holds fewer than %d bytes: %w", key, size, io.ErrUnexpectedEOF)
		}
		r = &ctxSection{ctx: ctx, SectionReader: io.NewSectionReader(ra, off, size)}
	default:
		r = blob.ContextReader(ctx, io.LimitReader(r, size))
		opts.DisableMultipart = true
	}
	if _, err := s.client.PutObject(ctx, s.bucket, name, r, size, opts); err != nil {
		return fmt.Errorf("s3: put %s: %w", key, describe(err))
	}
	return nil
}

// Open implements blob.Store. The object reads through ctx: it must last as
// long as the reading.
func (s *Store) Open(ctx context.Context, key string) (blob.Object, error) {
	name, err := s.object(key)
	if err != nil {
		return nil, fmt.Errorf("s3: open: %w", err)
	}
	o, err := s.client.GetObject(ctx, s.bucket, name, minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("s3: open %s: %w", key, describe(err))
	}
	// GetObject is lazy: Stat makes the first request, a HEAD.
	info, err := o.Stat()
	if err != nil {
		o.Close()
		switch errorCode(err) {
		case minio.NoSuchKey, "NotFound":
			// A HEAD has no body to tell a missing key from a missing
			// bucket; ask, so that a wrong bucket is not "not found".
			if err := s.CheckBucket(ctx); err != nil {
				return nil, fmt.Errorf("s3: open %s: %w", key, err)
			}
			return nil, fmt.Errorf("s3: open %s: %w", key, blob.ErrNotFound)
		}
		return nil, fmt.Errorf("s3: open %s: %w", key, describe(err))
	}
	ct := info.ContentType
	if ct == "" {
		ct = blob.DefaultContentType
	}
	return &object{Object: o, size: info.Size, mod: info.LastModified, ct: ct}, nil
}

// Delete implements blob.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	name, err := s.object(key)
	if err != nil {
		return fmt.Errorf("s3: delete: %w", err)
	}
	if err := s.client.RemoveObject(ctx, s.bucket, name, minio.RemoveObjectOptions{}); err != nil {
		if errorCode(err) == minio.NoSuchKey {
			return nil
		}
		return fmt.Errorf("s3: delete %s: %w", key, describe(err))
	}
	return nil
}

// ctxSection is a SectionReader that stops reading when ctx ends.
type ctxSection struct {
	ctx context.Context
	*io.SectionReader
}

func (c *ctxSection) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.SectionReader.Read(p)
}

func (c *ctxSection) ReadAt(p []byte, off int64) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.SectionReader.ReadAt(p, off)
}

// object is an open S3 object. minio's Object reads lazily, with ranged
// requests after a Seek, which is what http.ServeContent needs.
type object struct {
	*minio.Object
	size int64
	mod  time.Time
	ct   string
}

func (o *object) Size() int64         { return o.size }
func (o *object) ModTime() time.Time  { return o.mod }
func (o *object) ContentType() string { return o.ct }

// errorCode is the S3 error code in err, if any.
func errorCode(err error) string {
	var e minio.ErrorResponse
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// describe turns an S3 error response into an error naming its code and
// status along with the server's message, and maps a missing bucket to
// ErrNoBucket. Responses carry no credentials, and neither does this.
func describe(err error) error {
	var e minio.ErrorResponse
	if !errors.As(err, &e) {
		return err
	}
	if e.Code == minio.NoSuchBucket {
		return fmt.Errorf("%w (%s)", ErrNoBucket, e.Message)
	}
	return &Error{Code: e.Code, Status: e.StatusCode, Message: e.Message, err: err}
}

// Error is an error response from the server.
type Error struct {
	Code    string // S3 error code: "AccessDenied", "InvalidAccessKeyId", …
	Status  int    // HTTP status
	Message string
	err     error
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("%s (HTTP %d)", e.Code, e.Status)
	}
	return fmt.Sprintf("%s (HTTP %d): %s", e.Code, e.Status, e.Message)
}

func (e *Error) Unwrap() error { return e.err }
