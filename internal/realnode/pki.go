package realnode

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// certSpec is one certificate of the cluster, signed by its CA.
type certSpec struct {
	name  string // file name: <name>.crt, <name>.key
	cn    string
	org   []string
	usage x509.ExtKeyUsage
	dns   []string
	ips   []net.IP
}

// writePKI writes the cluster's CA, its serving and client certificates
// (ECDSA P-256) and the ServiceAccount signing key into dir, unless the CA
// exists already (the cluster keeps its identity across up and down).
func writePKI(dir, node string, nodeIP net.IP) error {
	if _, err := os.Stat(filepath.Join(dir, "ca.crt")); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("realnode: pki: %w", err)
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("realnode: pki: %w", err)
	}
	now := time.Now().Add(-time.Hour)
	caTmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "realnode-ca"},
		NotBefore: now, NotAfter: now.Add(10 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("realnode: pki: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return fmt.Errorf("realnode: pki: %w", err)
	}
	specs := []certSpec{
		{name: "apiserver", cn: "kube-apiserver", usage: x509.ExtKeyUsageServerAuth,
			dns: []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc." + ClusterDomain, "localhost"},
			ips: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(10, 96, 0, 1), nodeIP}},
		{name: "apiserver-kubelet-client", cn: "kube-apiserver-kubelet-client", org: []string{"system:masters"}, usage: x509.ExtKeyUsageClientAuth},
		{name: "admin", cn: "kubernetes-admin", org: []string{"system:masters"}, usage: x509.ExtKeyUsageClientAuth},
		{name: "kube-controller-manager", cn: "system:kube-controller-manager", usage: x509.ExtKeyUsageClientAuth},
		{name: "kube-scheduler", cn: "system:kube-scheduler", usage: x509.ExtKeyUsageClientAuth},
		{name: "kube-proxy", cn: "system:kube-proxy", usage: x509.ExtKeyUsageClientAuth},
		{name: "kubelet-client", cn: "system:node:" + node, org: []string{"system:nodes"}, usage: x509.ExtKeyUsageClientAuth},
		{name: "kubelet-serving", cn: "system:node:" + node, org: []string{"system:nodes"}, usage: x509.ExtKeyUsageServerAuth,
			dns: []string{node}, ips: []net.IP{nodeIP}},
	}
	for _, s := range specs {
		if err := writeCert(dir, s, ca, caKey, now); err != nil {
			return err
		}
	}
	// The ServiceAccount token signing key (ES256, as envtest's).
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("realnode: pki: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return fmt.Errorf("realnode: pki: %w", err)
	}
	if err := writeKey(filepath.Join(dir, "sa.key"), saKey); err != nil {
		return err
	}
	if err := writePEM(filepath.Join(dir, "sa.pub"), "PUBLIC KEY", pub, 0o644); err != nil {
		return err
	}
	if err := writeKey(filepath.Join(dir, "ca.key"), caKey); err != nil {
		return err
	}
	// The CA last: its presence says the PKI is complete.
	return writePEM(filepath.Join(dir, "ca.crt"), "CERTIFICATE", caDER, 0o644)
}

func writeCert(dir string, s certSpec, ca *x509.Certificate, caKey crypto.Signer, now time.Time) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("realnode: pki: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: s.cn, Organization: s.org},
		NotBefore: now, NotAfter: now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{s.usage},
		BasicConstraintsValid: true, DNSNames: s.dns, IPAddresses: s.ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("realnode: pki: certificate %s: %w", s.name, err)
	}
	if err := writeKey(filepath.Join(dir, s.name+".key"), key); err != nil {
		return err
	}
	return writePEM(filepath.Join(dir, s.name+".crt"), "CERTIFICATE", der, 0o644)
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("realnode: pki: %w", err)
	}
	return writePEM(path, "EC PRIVATE KEY", der, 0o600)
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		return fmt.Errorf("realnode: pki: %w", err)
	}
	return nil
}

// serial is a random certificate serial number (crypto/rand never fails
// since Go 1.24; the clock is the fallback of an impossible error).
func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}
