//go:build integration

package reconciler_test

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/internal/testbed"
)

// installClass creates a shipped class (kept if it exists).
func installClass(t *testing.T, name string) {
	t.Helper()
	if err := cp.Client.Create(t.Context(), testbed.Class(t, name)); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// toolConnector creates, in ns, a Secret name of secretType with data and
// a connector name of the class at address that uses it through authName
// (with the auth params), trusting the CA Secret caName.
func toolConnector(t *testing.T, ns, name, class, address, authName string, secretType corev1.SecretType, data map[string]string, caName string, params ...connectorsv1alpha1.Param) *connectorsv1alpha1.Connector {
	t.Helper()
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Type: secretType, StringData: data}
	if err := cp.Client.Create(t.Context(), sec); err != nil {
		t.Fatal(err)
	}
	c := &connectorsv1alpha1.Connector{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: connectorsv1alpha1.ConnectorSpec{ConnectorClassName: class, Address: address,
			Auth:            connectorsv1alpha1.ConnectorAuth{Name: authName, SecretRef: &connectorsv1alpha1.SecretReference{Name: sec.Name}, Params: params},
			CACertSecretRef: &connectorsv1alpha1.LocalSecretReference{Name: caName}},
	}
	if err := cp.Client.Create(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	return c
}

// caSecret creates the Secret name in ns that holds a connector's
// caCertSecretRef (ca.crt).
func caSecret(t *testing.T, ns, name string, caPEM []byte) *corev1.Secret {
	t.Helper()
	ca := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{"ca.crt": caPEM}}
	if err := cp.Client.Create(t.Context(), ca); err != nil {
		t.Fatal(err)
	}
	return ca
}

// certPEM is a certificate in PEM.
func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// TestTheShippedGitClassProbesARealGitServer: the git class's liveness
// probe and its auth probe (the ref advertisement of spec.auth.params
// repository) against git http-backend: the right credential for a
// repository that exists is Ready; a wrong password, or a repository that
// does not exist, is AuthReady False with the server's answer.
func TestTheShippedGitClassProbesARealGitServer(t *testing.T) {
	installClass(t, "git")
	opts := reconcilerOptions(t, recorder(t))
	startController(t, opts)
	srv := testbed.StartGitServer(t, "git-user", "the-git-password")
	srv.BareRepo(t, "org/app.git")
	ns := namespace(t, "git")
	ca := caSecret(t, ns, "git-ca", srv.CAPEM())
	for _, tt := range []struct {
		name, password, repository string
		ready                      bool
		say                        string
	}{
		{"the right credential for an existing repository is Ready", "the-git-password", "org/app.git", true, ""},
		{"a wrong password is AuthReady False", "not-the-password", "org/app.git", false, "401"},
		{"a repository that does not exist is AuthReady False", "the-git-password", "org/none.git", false, "404"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			name := strings.ToLower(strings.ReplaceAll(strings.Fields(tt.name)[1]+"-"+strings.Fields(tt.name)[2], " ", "-"))
			toolConnector(t, ns, name, "git", srv.URL, "basicAuth", corev1.SecretTypeBasicAuth, map[string]string{"username": "git-user", "password": tt.password}, ca.Name,
				connectorsv1alpha1.Param{Name: "repository", Value: connectorsv1alpha1.NewStringParamValue("/git/" + tt.repository)})
			if tt.ready {
				got := cp.WaitForConnector(t, ns, name, "Ready True", testbed.ReadyTrue)
				if cd := connectorsv1alpha1.FindCondition(got.Status.Conditions, connectorsv1alpha1.ConditionLivenessReady); cd == nil || cd.Status != metav1.ConditionTrue {
					t.Errorf("LivenessReady %+v, want True", cd)
				}
				return
			}
			got := cp.WaitForConnector(t, ns, name, "AuthReady False", testbed.ConditionIs(connectorsv1alpha1.ConditionAuthReady, metav1.ConditionFalse, ""))
			cd := connectorsv1alpha1.FindCondition(got.Status.Conditions, connectorsv1alpha1.ConditionAuthReady)
			if cd.Reason != connectorsv1alpha1.ReasonAuthenticationFailed || !strings.Contains(cd.Message, tt.say) {
				t.Errorf("AuthReady %s %q, want AuthenticationFailed saying %s", cd.Reason, cd.Message, tt.say)
			}
			if strings.Contains(cd.Message, tt.password) {
				t.Error("the condition quotes the password")
			}
		})
	}
}

// TestTheShippedGitLabClassProbesAGitLabAPI: liveness on /api/v4/version
// (401 without a token, as GitLab answers) and the auth probe on
// /api/v4/user with the access token in Private-Token.
func TestTheShippedGitLabClassProbesAGitLabAPI(t *testing.T) {
	installClass(t, "gitlab")
	opts := reconcilerOptions(t, recorder(t))
	startController(t, opts)
	gitlab := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Private-Token") != "glpat-valid" {
			http.Error(w, `{"message":"401 Unauthorized"}`, http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/api/v4/user":
			_, _ = io.WriteString(w, `{"id":1,"username":"bot"}`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(gitlab.Close)
	ns := namespace(t, "gitlab")
	ca := caSecret(t, ns, "gitlab-ca", certPEM(gitlab.Certificate()))
	for _, tt := range []struct {
		name, token string
		ready       bool
	}{{"valid", "glpat-valid", true}, {"revoked", "glpat-revoked", false}} {
		t.Run("a "+tt.name+" token", func(t *testing.T) {
			toolConnector(t, ns, tt.name, "gitlab", gitlab.URL, "patAuth", connectorsv1alpha1.SecretTypeGitLabPAT, map[string]string{"token": tt.token}, ca.Name)
			if tt.ready {
				cp.WaitForConnector(t, ns, tt.name, "Ready True", testbed.ReadyTrue)
				return
			}
			got := cp.WaitForConnector(t, ns, tt.name, "AuthReady False", testbed.ConditionIs(connectorsv1alpha1.ConditionAuthReady, metav1.ConditionFalse, connectorsv1alpha1.ReasonAuthenticationFailed))
			if cd := connectorsv1alpha1.FindCondition(got.Status.Conditions, connectorsv1alpha1.ConditionLivenessReady); cd == nil || cd.Status != metav1.ConditionTrue {
				t.Errorf("LivenessReady %+v, want True (GitLab answered)", cd)
			}
		})
	}
}

// TestTheShippedPyPIClassProbesAPackageIndex: the pypi class's probes on
// the simple index under the connector's address (a trailing slash or
// none), against a PEP 503 index that demands Basic auth.
func TestTheShippedPyPIClassProbesAPackageIndex(t *testing.T) {
	srv := testbed.StartPyPIServer(t, "pypi-user", "the-pypi-password")
	probeBasicAuthClass(t, "pypi", srv.CAPEM(), "pypi-user", "the-pypi-password", srv.URL, srv.URL+"/")
}

// TestTheShippedNpmClassProbesARealRegistry: the npm class's probes
// (npm ping, and npm whoami naming the user) against verdaccio.
func TestTheShippedNpmClassProbesARealRegistry(t *testing.T) {
	reg := testbed.StartVerdaccio(t, "npm-user", "the-npm-password")
	probeBasicAuthClass(t, "npm", reg.CAPEM, "npm-user", "the-npm-password", reg.URL, strings.TrimSuffix(reg.URL, "/"))
}

// TestTheShippedMavenClassProbesARepository: the maven class's probes on
// the repository's root under the connector's address.
func TestTheShippedMavenClassProbesARepository(t *testing.T) {
	repo := testbed.StartMavenRepo(t, "maven-user", "the-maven-password")
	probeBasicAuthClass(t, "maven", repo.CAPEM, "maven-user", "the-maven-password", repo.URL, repo.URL+"/")
}

// probeBasicAuthClass runs the shipped class's probes against a server
// with one Basic user: the right credential is Ready at each address, a
// wrong one AuthReady False (AuthenticationFailed) at the first.
func probeBasicAuthClass(t *testing.T, class string, caPEM []byte, user, pass string, addresses ...string) {
	t.Helper()
	installClass(t, class)
	opts := reconcilerOptions(t, recorder(t))
	startController(t, opts)
	ns := namespace(t, class)
	ca := caSecret(t, ns, class+"-ca", caPEM)
	type probeCase struct {
		name, password, address string
		ready                   bool
	}
	var cases []probeCase
	for i, a := range addresses {
		cases = append(cases, probeCase{fmt.Sprintf("right-%d", i), pass, a, true})
	}
	cases = append(cases, probeCase{"wrong", "not-the-password", addresses[0], false})
	for _, tt := range cases {
		t.Run("the "+tt.name+" credential at "+tt.address, func(t *testing.T) {
			toolConnector(t, ns, tt.name, class, tt.address, "basicAuth", corev1.SecretTypeBasicAuth, map[string]string{"username": user, "password": tt.password}, ca.Name)
			if tt.ready {
				cp.WaitForConnector(t, ns, tt.name, "Ready True", testbed.ReadyTrue)
				return
			}
			got := cp.WaitForConnector(t, ns, tt.name, "AuthReady False", testbed.ConditionIs(connectorsv1alpha1.ConditionAuthReady, metav1.ConditionFalse, ""))
			cd := connectorsv1alpha1.FindCondition(got.Status.Conditions, connectorsv1alpha1.ConditionAuthReady)
			if cd.Reason != connectorsv1alpha1.ReasonAuthenticationFailed || strings.Contains(cd.Message, tt.password) {
				t.Errorf("AuthReady %s %q, want AuthenticationFailed, without the password", cd.Reason, cd.Message)
			}
			t.Logf("AuthReady False: %s", cd.Message)
		})
	}
}

// TestTheShippedSonarQubeClassProbesTheServersStatusAndTheToken: liveness
// needs the status UP (not STARTING), the auth probe a token that
// /api/authentication/validate calls valid (SonarQube answers 200 with
// valid false for a bad token).
func TestTheShippedSonarQubeClassProbesTheServersStatusAndTheToken(t *testing.T) {
	installClass(t, "sonarqube")
	opts := reconcilerOptions(t, recorder(t))
	startController(t, opts)
	status := "UP"
	var mu sync.Mutex
	sonar := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/system/status":
			mu.Lock()
			defer mu.Unlock()
			_, _ = io.WriteString(w, `{"id":"1","version":"10.7","status":"`+status+`"}`)
		case "/api/authentication/validate":
			_, _ = fmt.Fprintf(w, `{"valid":%t}`, r.Header.Get("Authorization") == "Bearer squ_valid")
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(sonar.Close)
	ns := namespace(t, "sonarqube")
	ca := caSecret(t, ns, "sonar-ca", certPEM(sonar.Certificate()))
	connector := func(name, token string) {
		t.Helper()
		toolConnector(t, ns, name, "sonarqube", sonar.URL, "tokenAuth", connectorsv1alpha1.SecretTypeBearerToken, map[string]string{"token": token}, ca.Name)
	}
	t.Run("a valid token on a server that is up is Ready", func(t *testing.T) {
		connector("valid", "squ_valid")
		cp.WaitForConnector(t, ns, "valid", "Ready True", testbed.ReadyTrue)
	})
	t.Run("a token the server calls invalid is AuthReady False", func(t *testing.T) {
		connector("invalid", "squ_revoked")
		cp.WaitForConnector(t, ns, "invalid", "AuthReady False", testbed.ConditionIs(connectorsv1alpha1.ConditionAuthReady, metav1.ConditionFalse, connectorsv1alpha1.ReasonAuthenticationFailed))
	})
	t.Run("a server that is starting is LivenessReady False", func(t *testing.T) {
		mu.Lock()
		status = "STARTING"
		mu.Unlock()
		connector("starting", "squ_valid")
		got := cp.WaitForConnector(t, ns, "starting", "LivenessReady False", testbed.ConditionIs(connectorsv1alpha1.ConditionLivenessReady, metav1.ConditionFalse, ""))
		t.Logf("LivenessReady False: %s", connectorsv1alpha1.FindCondition(got.Status.Conditions, connectorsv1alpha1.ConditionLivenessReady).Message)
	})
}

// TestTheShippedGitHubClassProbesARepositoryWithTheToken: the github
// class's auth probe reads the ref advertisement of spec.auth.params
// repository with Basic x-access-token:<token>, as GitHub takes a token
// for git: a valid token is Ready, a revoked one AuthReady False.
func TestTheShippedGitHubClassProbesARepositoryWithTheToken(t *testing.T) {
	installClass(t, "github")
	opts := reconcilerOptions(t, recorder(t))
	startController(t, opts)
	srv := testbed.StartGitServer(t, "x-access-token", "ghp_valid")
	srv.BareRepo(t, "org/app.git")
	ns := namespace(t, "github")
	ca := caSecret(t, ns, "github-ca", srv.CAPEM())
	for _, tt := range []struct {
		name, token string
		ready       bool
	}{{"valid", "ghp_valid", true}, {"revoked", "ghp_revoked", false}} {
		t.Run("a "+tt.name+" token", func(t *testing.T) {
			toolConnector(t, ns, tt.name, "github", srv.URL, "patAuth", corev1.SecretTypeOpaque, map[string]string{"token": tt.token}, ca.Name,
				connectorsv1alpha1.Param{Name: "repository", Value: connectorsv1alpha1.NewStringParamValue("git/org/app")})
			if tt.ready {
				cp.WaitForConnector(t, ns, tt.name, "Ready True", testbed.ReadyTrue)
				return
			}
			got := cp.WaitForConnector(t, ns, tt.name, "AuthReady False", testbed.ConditionIs(connectorsv1alpha1.ConditionAuthReady, metav1.ConditionFalse, connectorsv1alpha1.ReasonAuthenticationFailed))
			if cd := connectorsv1alpha1.FindCondition(got.Status.Conditions, connectorsv1alpha1.ConditionAuthReady); !strings.Contains(cd.Message, "401") || strings.Contains(cd.Message, tt.token) {
				t.Errorf("AuthReady %q, want the 401 and not the token", cd.Message)
			}
		})
	}
}

// TestTheShippedNexusAndJFrogClassesProbeTheirStatusAndACredential: the
// nexus class's probes (status, and status/check with the credential) and
// the jfrog class's (system ping, and system version with the
// credential), against servers that answer those paths as Nexus and
// Artifactory do, below the address's path.
func TestTheShippedNexusAndJFrogClassesProbeTheirStatusAndACredential(t *testing.T) {
	opts := reconcilerOptions(t, recorder(t))
	startController(t, opts)
	for _, tt := range []struct {
		class, base, open, guarded, answer string
	}{
		{"nexus", "", "/service/rest/v1/status", "/service/rest/v1/status/check", `{"status":"ok"}`},
		{"jfrog", "/artifactory", "/artifactory/api/system/ping", "/artifactory/api/system/version", `{"version":"7.90.0"}`},
	} {
		t.Run(tt.class, func(t *testing.T) {
			installClass(t, tt.class)
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case tt.open:
					_, _ = io.WriteString(w, "OK")
				case tt.guarded:
					if u, p, ok := r.BasicAuth(); !ok || u != "ci" || p != "the-password" {
						w.Header().Set("WWW-Authenticate", `Basic realm="`+tt.class+`"`)
						http.Error(w, "unauthorized", http.StatusUnauthorized)
						return
					}
					_, _ = io.WriteString(w, tt.answer)
				default:
					http.NotFound(w, r)
				}
			}))
			t.Cleanup(srv.Close)
			ns := namespace(t, tt.class)
			ca := caSecret(t, ns, "ca", certPEM(srv.Certificate()))
			for _, cs := range []struct {
				name, password string
				ready          bool
			}{{"right", "the-password", true}, {"wrong", "not-the-password", false}} {
				toolConnector(t, ns, cs.name, tt.class, srv.URL+tt.base, "basicAuth", corev1.SecretTypeBasicAuth, map[string]string{"username": "ci", "password": cs.password}, ca.Name)
				if cs.ready {
					cp.WaitForConnector(t, ns, cs.name, "Ready True", testbed.ReadyTrue)
					continue
				}
				got := cp.WaitForConnector(t, ns, cs.name, "AuthReady False", testbed.ConditionIs(connectorsv1alpha1.ConditionAuthReady, metav1.ConditionFalse, connectorsv1alpha1.ReasonAuthenticationFailed))
				if cd := connectorsv1alpha1.FindCondition(got.Status.Conditions, connectorsv1alpha1.ConditionAuthReady); !strings.Contains(cd.Message, "401") {
					t.Errorf("AuthReady %q, want the 401", cd.Message)
				}
			}
		})
	}
}

// TestTheShippedHarborClassProbesHarborsHealthAndTheUser: liveness takes
// Harbor's health API (status healthy), the auth probe its current user,
// which Harbor answers only to a valid credential.
func TestTheShippedHarborClassProbesHarborsHealthAndTheUser(t *testing.T) {
	harbor := testbed.StartHarbor(t, "robot$ci", "the-harbor-password")
	probeBasicAuthClass(t, "harbor", harbor.CAPEM, "robot$ci", "the-harbor-password", harbor.URL)
	paths, _ := harbor.APIRequests()
	if !slices.Contains(paths, "/api/v2.0/health") || !slices.Contains(paths, "/api/v2.0/users/current") {
		t.Errorf("Harbor got %v, want the health and current-user APIs", paths)
	}
}

// TestTheShippedOCIClassProbesTheRegistrysAPIRootAndLogsIn: the oci class's
// liveness probe takes the distribution registry's /v2/ (401 with its
// challenge) as a registry that is there; the credential is checked by the
// registry login (the class declares no auth probe: a token registry takes
// the credential at its token service only): Basic for htpasswd, a token
// from the token service otherwise. A refused credential is AuthReady
// False naming the Secret, never the password.
func TestTheShippedOCIClassProbesTheRegistrysAPIRootAndLogsIn(t *testing.T) {
	installClass(t, "oci")
	opts := reconcilerOptions(t, recorder(t))
	startController(t, opts)
	ns := namespace(t, "oci")
	for _, tokenAuth := range []bool{false, true} {
		reg := testbed.StartRegistry(t, testbed.RegistryOptions{User: "ci", Password: "the-registry-password", TokenAuth: tokenAuth})
		kind := map[bool]string{false: "htpasswd", true: "token"}[tokenAuth]
		ca := caSecret(t, ns, kind+"-ca", reg.CAPEM)
		for _, tt := range []struct {
			name, password string
			ready          bool
		}{{kind + "-right", "the-registry-password", true}, {kind + "-wrong", "not-the-password", false}, {kind + "-no-password", "", false}} {
			t.Run(tt.name, func(t *testing.T) {
				data := map[string]string{"username": "ci"}
				if tt.password != "" {
					data["password"] = tt.password
				}
				toolConnector(t, ns, tt.name, "oci", reg.URL, "tokenAuth", connectorsv1alpha1.SecretTypeDistributionRegistryToken, data, ca.Name)
				if tt.ready {
					got := cp.WaitForConnector(t, ns, tt.name, "Ready True", testbed.ReadyTrue)
					if cd := connectorsv1alpha1.FindCondition(got.Status.Conditions, connectorsv1alpha1.ConditionAuthReady); cd.Reason == connectorsv1alpha1.ReasonNonAuthProbe {
						t.Errorf("AuthReady %s: the credential was not checked", cd.Reason)
					}
					return
				}
				got := cp.WaitForConnector(t, ns, tt.name, "Ready False", testbed.ConditionIs(connectorsv1alpha1.ConditionReady, metav1.ConditionFalse, ""))
				t.Logf("Ready False: %s", connectorsv1alpha1.FindCondition(got.Status.Conditions, connectorsv1alpha1.ConditionReady).Message)
				if tt.password == "" {
					return // SecretReady says the key is missing
				}
				cd := connectorsv1alpha1.FindCondition(got.Status.Conditions, connectorsv1alpha1.ConditionAuthReady)
				if cd == nil || cd.Reason != connectorsv1alpha1.ReasonAuthenticationFailed || !strings.Contains(cd.Message, "not accepted") || strings.Contains(cd.Message, tt.password) {
					t.Errorf("AuthReady %+v: want AuthenticationFailed naming the refusal, without the password", cd)
				}
			})
		}
	}
}
