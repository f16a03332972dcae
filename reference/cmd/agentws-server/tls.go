package main

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certFiles serves the certificate of a PEM certificate file and its key file, read
// again when either changes: a renewal (certbot, cert-manager, a mounted secret) takes
// effect at the next handshake, without a restart. The files are read at most once per
// certCheckInterval. A pair that does not load (the certificate written, the key not
// yet) leaves the certificate before it in use, with one warning, until it does.
type certFiles struct {
	certFile, keyFile string
	log               *slog.Logger
	now               func() time.Time

	mu       sync.Mutex
	cert     *tls.Certificate
	loaded   [2][]byte // the files' contents cert came from
	warned   string    // the failure to load them last warned about
	checked  time.Time
	reloaded int // how many times a change was loaded, for tests
}

// certCheckInterval is how often, at most, the files are read for a change.
const certCheckInterval = time.Second

// loadCertFiles reads the pair; it must load at start.
func loadCertFiles(certFile, keyFile string, log *slog.Logger) (*certFiles, error) {
	c := &certFiles{certFile: certFile, keyFile: keyFile, log: log, now: time.Now}
	pemCert, pemKey, err := c.read()
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(pemCert, pemKey)
	if err != nil {
		return nil, fmt.Errorf("-tls-cert %s and -tls-key %s: %w", certFile, keyFile, err)
	}
	c.cert, c.loaded, c.checked = &cert, [2][]byte{pemCert, pemKey}, c.now()
	return c, nil
}

func (c *certFiles) read() (cert, key []byte, err error) {
	if cert, err = os.ReadFile(c.certFile); err != nil {
		return nil, nil, fmt.Errorf("-tls-cert: %w", err)
	}
	if key, err = os.ReadFile(c.keyFile); err != nil {
		return nil, nil, fmt.Errorf("-tls-key: %w", err)
	}
	return cert, key, nil
}

// getCertificate is the tls.Config's GetCertificate.
func (c *certFiles) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); now.Sub(c.checked) >= certCheckInterval {
		c.checked = now
		c.reloadLocked()
	}
	return c.cert, nil
}

// reloadLocked loads the files if they changed since the certificate in use was
// loaded. A failure is warned about once, until the files change again. c.mu is held.
func (c *certFiles) reloadLocked() {
	pemCert, pemKey, err := c.read()
	if err == nil && bytes.Equal(pemCert, c.loaded[0]) && bytes.Equal(pemKey, c.loaded[1]) {
		c.warned = ""
		return
	}
	var cert tls.Certificate
	if err == nil {
		cert, err = tls.X509KeyPair(pemCert, pemKey)
	}
	if err != nil {
		if err.Error() != c.warned {
			c.warned = err.Error()
			c.log.Warn("TLS files changed but do not load: serving the certificate loaded before", "cert", c.certFile, "key", c.keyFile, "err", err)
		}
		return
	}
	c.cert, c.loaded, c.warned = &cert, [2][]byte{pemCert, pemKey}, ""
	c.reloaded++
	c.log.Info("TLS certificate reloaded", "cert", c.certFile, "not_after", cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
}

// tlsConfig is the server's TLS configuration: TLS 1.2 at least.
func (c *certFiles) tlsConfig() *tls.Config {
	return &tls.Config{GetCertificate: c.getCertificate, MinVersion: tls.VersionTLS12}
}
