//go:build integration

package gateway_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/internal/testbed"
)

// properties reads a Java properties file of key=value lines.
func properties(t *testing.T, path string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	props := map[string]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && !strings.HasPrefix(k, "#") {
			props[k] = v
		}
	}
	return props
}

// TestTheSonarQubeClassSendsTheScannerThroughTheForwardProxyWithTheServersToken:
// curl, as the scanner does with the mounted sonar-project.properties
// (server URL, proxy host, port, user and password) and ca.cert, reaches
// the server's API with the Secret's token as a bearer.
func TestTheSonarQubeClassSendsTheScannerThroughTheForwardProxyWithTheServersToken(t *testing.T) {
	e := startGateway(t, nil)
	installClass(t, "sonarqube")
	ns := namespace(t, "sonarqube")
	o := newOrigin(t)
	sec := &corev1.Secret{Type: connectorsv1alpha1.SecretTypeBearerToken, StringData: map[string]string{"token": "squ_the-real-token"}}
	c := connectorOfClass(t, "sonarqube", ns, "sonar", o.URL, sec, o.caPEM(), "http://"+e.addr)
	tok, _ := cp.PodToken(t, ns, "job", "default")

	dir := e.mount(t, "sonarqube", "sonar-scanner", c, "http://"+e.addr, tok)
	p := properties(t, filepath.Join(dir, "sonar-project.properties"))
	if p["sonar.host.url"] != o.URL || p["sonar.scanner.proxyHost"]+":"+p["sonar.scanner.proxyPort"] != e.addr ||
		p["sonar.scanner.proxyUser"] != ns+"/sonar" || p["sonar.scanner.proxyPassword"] != string(tok) {
		t.Fatalf("sonar-project.properties: host %q, proxy %s:%s, user %q", p["sonar.host.url"], p["sonar.scanner.proxyHost"], p["sonar.scanner.proxyPort"], p["sonar.scanner.proxyUser"])
	}
	out := testbed.Run(t, nil, "", "curl", "-sS", "--fail-with-body",
		"--proxy", "http://"+p["sonar.scanner.proxyHost"]+":"+p["sonar.scanner.proxyPort"],
		"--proxy-user", p["sonar.scanner.proxyUser"]+":"+p["sonar.scanner.proxyPassword"],
		"--cacert", filepath.Join(dir, "ca.cert"), p["sonar.host.url"]+"/api/qualitygates/project_status?projectKey=app")
	if out != "hello from the origin" {
		t.Fatalf("curl got %q", out)
	}
	got := o.last(t)
	if got.header.Get("Authorization") != "Bearer squ_the-real-token" || got.path != "/api/qualitygates/project_status" || got.query != "projectKey=app" {
		t.Errorf("the server got Authorization %q on %s?%s", got.header.Get("Authorization"), got.path, got.query)
	}
	if got.header.Get("Proxy-Authorization") != "" {
		t.Error("the pod's proxy credentials reached the server")
	}
}
