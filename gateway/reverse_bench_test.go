//go:build integration

package gateway_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	corev1 "k8s.io/api/core/v1"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
)

// BenchmarkReverseRequest: keep-alive GETs through the reverse proxy (path
// resolver) to an in-process HTTPS upstream that demands
// "Authorization: Bearer the-key", with the credential injected by the
// built-in bearer rule (baseline) and by a Rego generator that computes
// the same header; the ratio is what a class's generator costs per
// request. A direct GET to the upstream is the reference for both.
//
//	go test -tags integration ./gateway/ -run '^$' -bench BenchmarkReverseRequest -benchtime 3000x -count 5
func BenchmarkReverseRequest(b *testing.B) {
	e := startGateway(b, quiet)
	ns := namespace(b, "bench-rev")
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer the-key" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, `{"kind":"Status","status":"Success"}`)
	}))
	up.Config.ErrorLog = nil
	up.StartTLS()
	b.Cleanup(up.Close)
	upCA := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: up.Certificate().Raw})
	tok, _ := cp.PodToken(b, ns, "job", "default")

	regoClass(b, "bench-bearer", connectorsv1alpha1.SecretTypeBearerToken, "", "")
	connectorOfClass(b, "bench-bearer", ns, "bearer", up.URL, &corev1.Secret{
		Type: connectorsv1alpha1.SecretTypeBearerToken, StringData: map[string]string{connectorsv1alpha1.BearerTokenKey: "the-key"},
	}, upCA, "http://"+e.addr)
	regoClass(b, "bench-rego", "example.com/api-token", `package proxy
auth := {"position": "header", "auth": {"Authorization": concat(" ", ["Bearer", input.data.token])}}`, "")
	connectorOfClass(b, "bench-rego", ns, "rego", up.URL, &corev1.Secret{
		Type: "example.com/api-token", StringData: map[string]string{"token": "the-key"},
	}, upCA, "http://"+e.addr)

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(upCA)
	direct := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 64}}
	viaGateway := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.Cleanup(direct.CloseIdleConnections)
	b.Cleanup(viaGateway.CloseIdleConnections)
	for _, bc := range []struct {
		name, url, bearer string
		c                 *http.Client
	}{
		{"direct", up.URL + "/api/v1/items", "the-key", direct},
		{"gateway/bearer", "http://" + e.addr + "/namespaces/" + ns + "/connectors/bearer/api/v1/items", string(tok), viaGateway},
		{"gateway/rego", "http://" + e.addr + "/namespaces/" + ns + "/connectors/rego/api/v1/items", string(tok), viaGateway},
	} {
		b.Run(bc.name, func(b *testing.B) {
			warmGet(b, bc.c, bc.url, bc.bearer)
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					warmGet(b, bc.c, bc.url, bc.bearer)
				}
			})
		})
	}
}
