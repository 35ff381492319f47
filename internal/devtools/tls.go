package devtools

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// LoopbackCert is a self-signed certificate for 127.0.0.1, ::1 and
// localhost, made for one test process or benchmark so that the servers
// it starts (versitygw --cert/--key) speak TLS as every real deployment's
// S3 does. It is its own CA: a client trusts it by adding CertFile to its
// roots (ARCHIVE_URL ca_bundle=, or Pool).
type LoopbackCert struct {
	CertFile string // PEM certificate, also the CA bundle to trust
	KeyFile  string // PEM private key (mode 0600)
	Pool     *x509.CertPool
}

// NewLoopbackCert writes a fresh certificate and key, valid for a day,
// into dir.
func NewLoopbackCert(dir string) (*LoopbackCert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("loopback certificate: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, fmt.Errorf("loopback certificate: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "mediasync test loopback"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("loopback certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("loopback certificate: %w", err)
	}
	c := &LoopbackCert{CertFile: filepath.Join(dir, "tls-cert.pem"), KeyFile: filepath.Join(dir, "tls-key.pem")}
	if err := os.WriteFile(c.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, fmt.Errorf("loopback certificate: %w", err)
	}
	if err := os.WriteFile(c.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, fmt.Errorf("loopback certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("loopback certificate: %w", err)
	}
	c.Pool = x509.NewCertPool()
	c.Pool.AddCert(cert)
	return c, nil
}

// Transport returns an HTTP transport that trusts the certificate (and
// only it).
func (c *LoopbackCert) Transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: c.Pool, MinVersion: tls.VersionTLS12}
	return t
}
