package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// selfSigned returns a PEM certificate for localhost and 127.0.0.1 with the serial
// number serial, and its PEM key.
func selfSigned(t *testing.T, serial int64) (certPEM, keyPEM []byte, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "agentws test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), cert
}

func writeFile(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// With -tls-cert and -tls-key the server speaks wss:// and https://, on HTTP/1.1.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM, cert := selfSigned(t, 1)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeFile(t, certFile, certPEM)
	writeFile(t, keyFile, keyPEM)

	ctx, stop := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	var logs syncBuffer
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-log-format", "json", "-tls-cert", certFile, "-tls-key", keyFile}, env(nil), &logs, ready)
	}()
	addr := <-ready
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}}
	defer client.CloseIdleConnections()

	resp, err := client.Get("https://" + addr + "/ws/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 1 {
		t.Errorf("health over TLS: %s %s, want 200 on HTTP/1.1", resp.Proto, resp.Status)
	}
	dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(dctx, "wss://"+addr+"/ws?session_id=tls-test", &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if _, data, err := ws.Read(dctx); err != nil || !strings.Contains(string(data), `"type":"connected"`) {
		t.Fatalf("first frame over wss: %s, %v", data, err)
	}
	if !strings.Contains(logs.String(), `"url":"wss://`+addr+`/ws"`) {
		t.Errorf("the start line does not give the wss:// URL:\n%s", logs.String())
	}
	// A plain ws:// client gets no answer it could take for the protocol's.
	if _, _, err := websocket.Dial(dctx, "ws://"+addr+"/ws?session_id=plain", nil); err == nil {
		t.Error("a plain ws:// connection was upgraded on the TLS port")
	}
}

// The certificate files are read again when they change: a renewal takes effect at the
// next handshake; a pair that does not load (the certificate written, the key not yet)
// keeps the certificate before it, with one warning, until it does.
func TestTLSReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	cert1, key1, _ := selfSigned(t, 1)
	cert2, key2, _ := selfSigned(t, 2)
	writeFile(t, certFile, cert1)
	writeFile(t, keyFile, key1)
	var logs bytes.Buffer
	c, err := loadCertFiles(certFile, keyFile, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Now()
	c.now = func() time.Time { return clock }
	serial := func() int64 {
		t.Helper()
		got, err := c.getCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		return got.Leaf.SerialNumber.Int64()
	}
	if s := serial(); s != 1 {
		t.Fatalf("serial %d at start, want 1", s)
	}

	writeFile(t, certFile, cert2) // the key is still the old one
	clock = clock.Add(certCheckInterval)
	if s := serial(); s != 1 {
		t.Fatalf("a mismatched pair: serial %d, want the old certificate, 1", s)
	}
	clock = clock.Add(certCheckInterval)
	serial()
	if n := strings.Count(logs.String(), "do not load"); n != 1 {
		t.Errorf("%d warnings for the mismatched pair, want 1:\n%s", n, logs.String())
	}

	writeFile(t, keyFile, key2)
	if s := serial(); s != 1 {
		t.Fatalf("within the check interval: serial %d, want the old certificate still", s)
	}
	clock = clock.Add(certCheckInterval)
	if s := serial(); s != 2 || c.reloaded != 1 {
		t.Fatalf("after the renewal: serial %d, %d reloads; want 2, 1", s, c.reloaded)
	}
	if !strings.Contains(logs.String(), "TLS certificate reloaded") {
		t.Errorf("no line says the certificate was reloaded:\n%s", logs.String())
	}

	os.Remove(keyFile) // gone: the loaded certificate serves on
	clock = clock.Add(certCheckInterval)
	if s := serial(); s != 2 {
		t.Fatalf("with the key file gone: serial %d, want 2", s)
	}
}

// Bad TLS settings stop the server at start, naming the flag.
func TestTLSSettings(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM, _ := selfSigned(t, 1)
	certFile, keyFile, junk := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "junk.pem")
	writeFile(t, certFile, certPEM)
	writeFile(t, keyFile, keyPEM)
	writeFile(t, junk, []byte("not PEM"))
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-tls-cert", certFile}, "-tls-cert and -tls-key go together"},
		{[]string{"-tls-key", keyFile}, "-tls-cert and -tls-key go together"},
		{[]string{"-tls-cert", filepath.Join(dir, "missing.pem"), "-tls-key", keyFile}, "-tls-cert: open"},
		{[]string{"-tls-cert", certFile, "-tls-key", junk}, "-tls-cert " + certFile + " and -tls-key " + junk},
	} {
		err := run(context.Background(), append(tt.args, "-addr", "127.0.0.1:0"), env(nil), io.Discard, nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: got %v, want %q", tt.args, err, tt.want)
		}
	}
}
