package gateway

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"
)

// CA signs the leaf certificates the gateway presents inside tunnels.
type CA struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
}

// ParseCA reads a CA certificate and its private key (PEM).
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("gateway CA: %w", err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("gateway CA certificate: %w", err)
	}
	if !cert.IsCA {
		return nil, errors.New("gateway CA: the certificate is not a CA (basicConstraints CA:TRUE)")
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, errors.New("gateway CA: the private key cannot sign")
	}
	return &CA{cert: cert, key: signer, certPEM: certPEM}, nil
}

// GenerateCA makes a new self-signed ECDSA P-256 CA valid for ten years,
// for local runs without a CA Secret. It returns the CA and its PEM files.
func GenerateCA(commonName string) (ca *CA, certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("generate CA key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("CA serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"Connectors"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("self-sign CA: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("encode CA key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	ca, err = ParseCA(certPEM, keyPEM)
	return ca, certPEM, keyPEM, err
}

// CertPEM is the CA certificate clients trust (the kubeconfig's
// certificate-authority-data).
func (ca *CA) CertPEM() []byte { return ca.certPEM }

// leafLifetime is how long a minted leaf is valid; leaves are re-minted
// when less than a quarter of that is left.
const leafLifetime = 24 * time.Hour

// leafCache mints leaf certificates for tunnel hosts once and keeps them in
// a bounded LRU.
type leafCache struct {
	ca     *CA
	cache  *lru.Cache[string, *tls.Certificate]
	flight singleflight.Group
	now    func() time.Time
}

func newLeafCache(ca *CA, size int, now func() time.Time) *leafCache {
	c, _ := lru.New[string, *tls.Certificate](size) // size > 0 is checked by the options
	return &leafCache{ca: ca, cache: c, now: now}
}

// get returns a leaf for host (a DNS name or an IP address).
func (l *leafCache) get(host string) (*tls.Certificate, error) {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if c, ok := l.cache.Get(host); ok && l.now().Before(c.Leaf.NotAfter.Add(-leafLifetime/4)) {
		return c, nil
	}
	v, err, _ := l.flight.Do(host, func() (any, error) {
		c, err := l.mint(host)
		if err != nil {
			return nil, err
		}
		l.cache.Add(host, c)
		return c, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*tls.Certificate), nil
}

func (l *leafCache) mint(host string) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("leaf key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("leaf serial: %w", err)
	}
	now := l.now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: host},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(leafLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, l.ca.cert, key.Public(), l.ca.key)
	if err != nil {
		return nil, fmt.Errorf("sign the leaf for %s: %w", host, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse the leaf for %s: %w", host, err)
	}
	return &tls.Certificate{Certificate: [][]byte{der, l.ca.cert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}
