// Package certfile serves a TLS certificate and key kept in PEM files,
// reloading them when the files change (no restart: an ACME client or an
// operator replaces the files and the next handshake uses the new pair), and
// builds the pool of roots a TLS client verifies against: the system roots
// plus an optional CA bundle file.
package certfile

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Config names the files of a Reloader.
type Config struct {
	// CertFile is the PEM certificate chain, leaf first; KeyFile its private key.
	CertFile, KeyFile string
	// CheckEvery is how often, at most, the files are looked at again
	// (on a handshake); default 1 s, negative looks at every handshake.
	CheckEvery time.Duration
	Logger     *slog.Logger
}

// Reloader hands out the certificate in its files, reloading it when either
// file's modification time or size changes. A pair that does not load (a
// half-written file, a key that does not match) keeps the previous one in
// service and is tried again at the next check.
type Reloader struct {
	cfg Config
	log *slog.Logger
	now func() time.Time

	mu        sync.Mutex
	cert      *tls.Certificate
	stamp     [2]fileStamp // of CertFile and KeyFile when cert was loaded
	checkedAt time.Time
	failed    [2]fileStamp // the stamps of the last pair that failed to load
}

type fileStamp struct {
	mod  time.Time
	size int64
}

// New loads the pair once; an error here names the file that is wrong.
func New(cfg Config) (*Reloader, error) {
	if cfg.CertFile == "" || cfg.KeyFile == "" {
		return nil, errors.New("certificate and key files are both required")
	}
	if cfg.CheckEvery == 0 {
		cfg.CheckEvery = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Reloader{cfg: cfg, log: cfg.Logger, now: time.Now}
	stamp, err := r.stat()
	if err != nil {
		return nil, err
	}
	cert, err := r.load()
	if err != nil {
		return nil, err
	}
	r.cert, r.stamp, r.checkedAt = cert, stamp, r.now()
	return r, nil
}

// GetCertificate is a tls.Config.GetCertificate for a server.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.Current(), nil
}

// GetClientCertificate is a tls.Config.GetClientCertificate: the same pair
// presented to a server that asks for a client certificate.
func (r *Reloader) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return r.Current(), nil
}

// Current returns the pair in service, reloading it first when the files
// changed since the last look.
func (r *Reloader) Current() *tls.Certificate {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if r.cfg.CheckEvery > 0 && now.Sub(r.checkedAt) < r.cfg.CheckEvery {
		return r.cert
	}
	r.checkedAt = now
	stamp, err := r.stat()
	if err != nil {
		if r.failed != [2]fileStamp{} {
			return r.cert
		}
		r.failed = [2]fileStamp{{size: -1}, {size: -1}}
		r.log.Warn("tls certificate files unreadable; keeping the loaded certificate", "error", err)
		return r.cert
	}
	if stamp == r.stamp || stamp == r.failed {
		return r.cert
	}
	cert, err := r.load()
	if err != nil {
		r.failed = stamp
		r.log.Warn("tls certificate files changed but do not load; keeping the loaded certificate", "error", err)
		return r.cert
	}
	r.cert, r.stamp, r.failed = cert, stamp, [2]fileStamp{}
	r.log.Info("tls certificate reloaded", "cert_file", r.cfg.CertFile, "subject", cert.Leaf.Subject.String(), "not_after", cert.Leaf.NotAfter)
	return r.cert
}

func (r *Reloader) stat() ([2]fileStamp, error) {
	var s [2]fileStamp
	for i, name := range []string{r.cfg.CertFile, r.cfg.KeyFile} {
		fi, err := os.Stat(name)
		if err != nil {
			return s, fmt.Errorf("tls certificate: %w", err)
		}
		s[i] = fileStamp{mod: fi.ModTime(), size: fi.Size()}
	}
	return s, nil
}

func (r *Reloader) load() (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(r.cfg.CertFile, r.cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("load tls certificate %s with key %s: %w", r.cfg.CertFile, r.cfg.KeyFile, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("parse tls certificate %s: %w", r.cfg.CertFile, err)
		}
	}
	return &cert, nil
}

// Roots is the system's root pool plus the certificates of caFile (PEM),
// when given. It fails when caFile holds no certificate at all.
func Roots(caFile string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if caFile == "" {
		return pool, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read CA bundle: %w", err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA bundle %s: no PEM certificate in it", caFile)
	}
	return pool, nil
}
