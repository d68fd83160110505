//go:build integration

package gateway_test

import (
	"bufio"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/internal/testbed"
	"github.com/connectors-io/connectors/tokens"
)

// TestEveryCrossTenantOrForgedAccessIsDeniedAndAudited tries, for each row,
// to reach a connector the caller may not use: tokens of another namespace
// without (or with a removed, or a too narrow) grant, tokens of another
// audience, of a deleted pod, bound to no pod, forged or garbage, and proxy
// users that play path tricks with the connector's name. Each row has a
// connector and upstreams of its own (an HTTPS one as spec.address, a plain
// one as an address extension), so that the audit lines of its requests are
// told apart by their target. Each row sends a CONNECT and an absolute-URI
// request and wants: the status, the reason in the answer, the same reason
// in an audit line of that very request, no connection (let alone a
// request) at either upstream, and no token in the answer. A control then
// shows that the owner of the connector does reach both upstreams, so that
// "nothing reached the upstream" is not the result of a dead target.
func TestEveryCrossTenantOrForgedAccessIsDeniedAndAudited(t *testing.T) {
	e := startGateway(t, nil)
	nsA, nsB := namespace(t, "tenant-a"), namespace(t, "tenant-b")
	cp.CreateServiceAccount(t, nsA, "granted")
	cp.CreateServiceAccount(t, nsA, "former")

	var secrets []string // every token of the test: none may be logged or echoed
	secret := func(tok string) string {
		secrets = append(secrets, tok)
		e.logs.Secret(tok)
		return tok
	}
	pod := func(ns, name, sa string) string {
		tok, _ := cp.PodToken(t, ns, name, sa)
		return secret(string(tok))
	}
	tokA := pod(nsA, "a-job", "default")
	tokB := pod(nsB, "b-job", "default")
	tokGranted := pod(nsA, "a-granted", "granted")
	tokFormer := pod(nsA, "a-former", "former")

	// Tokens of A's pods that are valid for someone, but not for the gateway.
	otherAudience := secret(boundToken(t, nsA, "a-vault", []string{"vault.example"}))
	apiserverAudience := secret(boundToken(t, nsA, "a-kube", nil)) // the API server's own audience
	unboundTok, _ := cp.RequestToken(t, nsA, "default", testbed.TokenOptions{Audiences: []string{tokens.DefaultAudience}, Expiration: time.Hour})
	unbound := secret(unboundTok)
	gone := secret(deletedPodToken(t, e, nsA, "a-gone"))
	alice := secret(cp.UserToken) // a user of the API server, not a ServiceAccount

	// Forgeries of B's identity.
	tampered := secret(rewriteClaims(t, tokA, nsA, nsB))
	attackerKey := secret(signWithNewKey(t, tokB))
	algNone := secret(unsigned(t, tokB))
	hs256 := secret(signHS256WithClusterKey(t, tokB))
	garbage := secret("not-a-token-" + strconv.FormatInt(time.Now().UnixNano(), 36))

	basic := func(user, tok string) string { return basicAuth(user, tok) }
	trick := func(user func(c string) string) func(string) string {
		return func(c string) string { return basic(user(c), tokA) }
	}
	const (
		notAuthorized = "may not get connector "
		badUser       = "the proxy user must name connectors as <namespace>/<name>"
	)

	// The connector that a grant in B lets A's ServiceAccount "former" use
	// is checked first (its allow is cached), then the grant is removed:
	// its row, the last, comes after the allow's time to live.
	former := newIsolated(t, e, nsB, "former-grant")
	grant(t, nsB, "former-grant", nsA, "former")
	formerClient := e.client(t, nsB+"/former-grant", tokens.Token(tokFormer))
	waitControl(t, formerClient, former.up.URL+"/before-removal")
	allowedUntil := time.Now().Add(30 * time.Second) // the authorizer's default AllowTTL
	ungrant(t, nsB, "former-grant")

	grant(t, nsB, "granted-to-other", nsA, "granted")
	own := newIsolated(t, e, nsA, "a-own") // A's own connector, named with B's in one row

	type row struct {
		name string
		home string // the namespace of the row's connector
		conn string // its name
		// auth is the Proxy-Authorization of the denied requests ("": none).
		auth func(conn string) string
		want int
		say  string // in the answer and the audit line's reason
		// who is the pod the audit line names ("ns/name"), or "" when the
		// token was not taken: the line then names no pod at all.
		who string
		// owner is the token that may use the connector (the control);
		// default the home namespace's pod.
		owner string
		// before runs ahead of the denied requests.
		before func(t *testing.T)
		// inTunnel, when set, is a client whose tunnel was opened while
		// the access was allowed: a request in it is denied first.
		inTunnel *http.Client
	}
	rows := []row{
		{name: "A's pod token for a connector of B, with no grant in B, is 403", home: nsB, conn: "no-grant",
			auth: func(c string) string { return basic(nsB+"/"+c, tokA) }, want: 403, say: "serviceaccount " + nsA + "/default " + notAuthorized + nsB + "/no-grant", who: nsA + "/a-job"},
		{name: "A's pod token for a connector B does not have is 403, not 404: its existence is not told", home: nsB, conn: "exists",
			auth: func(string) string { return basic(nsB+"/absent", tokA) }, want: 403, say: notAuthorized + nsB + "/absent", who: nsA + "/a-job"},
		{name: "a grant in B to another ServiceAccount of A does not extend to A's default ServiceAccount", home: nsB, conn: "granted-to-other",
			auth: func(c string) string { return basic(nsB+"/"+c, tokA) }, want: 403, say: "serviceaccount " + nsA + "/default " + notAuthorized + nsB + "/granted-to-other", who: nsA + "/a-job",
			owner: tokGranted}, // the control: the grant does let A's "granted" in
		{name: "a grant in B for one connector does not extend to another connector of B", home: nsB, conn: "ungranted-sibling",
			auth: func(c string) string { return basic(nsB+"/"+c, tokGranted) }, want: 403, say: "serviceaccount " + nsA + "/granted " + notAuthorized + nsB + "/ungranted-sibling", who: nsA + "/a-granted"},
		{name: "a URL-encoded slash in the proxy user is decoded and the connector of B still needs a grant", home: nsB, conn: "encoded-slash",
			auth: func(c string) string { return basic(nsB+"%2F"+c, tokA) }, want: 403, say: notAuthorized + nsB + "/encoded-slash", who: nsA + "/a-job"},
		{name: "naming A's own connector before B's does not let A's pod into B's", home: nsB, conn: "listed-after-own",
			auth: func(c string) string { return basic(nsA+"/a-own,"+nsB+"/"+c, tokA) }, want: 403, say: "is not an address of connector " + nsA + "/a-own", who: nsA + "/a-job"},

		{name: "a pod-bound token of A with another audience is 407", home: nsA, conn: "other-audience",
			auth: func(c string) string { return basic(nsA+"/"+c, otherAudience) }, want: 407, say: "proxy token refused: token audience not accepted"},
		{name: "a pod-bound token of A with the API server's audience is 407", home: nsA, conn: "apiserver-audience",
			auth: func(c string) string { return basic(nsA+"/"+c, apiserverAudience) }, want: 407, say: "proxy token refused: token audience not accepted"},
		{name: "a proxy-audience ServiceAccount token of A bound to no pod is 407", home: nsA, conn: "unbound",
			auth: func(c string) string { return basic(nsA+"/"+c, unbound) }, want: 407, say: "proxy token refused: it is not bound to a pod"},
		{name: "the token of a deleted pod of A is 407", home: nsA, conn: "deleted-pod",
			auth: func(c string) string { return basic(nsA+"/"+c, gone) }, want: 407, say: "proxy token refused: token revoked: its pod was deleted"},
		{name: "a token of an API server user who is not a ServiceAccount is 407", home: nsA, conn: "apiserver-user",
			auth: func(c string) string { return basic(nsA+"/"+c, alice) }, want: 407, say: "proxy token refused: token is not a well-formed JWT"},
		{name: "A's token with its claims rewritten to B's namespace is 407", home: nsB, conn: "tampered-claims",
			auth: func(c string) string { return basic(nsB+"/"+c, tampered) }, want: 407, say: "proxy token refused: token signature invalid"},
		{name: "B's claims signed with another key under the cluster key's ID are 407", home: nsB, conn: "attacker-key",
			auth: func(c string) string { return basic(nsB+"/"+c, attackerKey) }, want: 407, say: "proxy token refused: token signature invalid"},
		{name: "B's claims unsigned (alg none) are 407", home: nsB, conn: "alg-none",
			auth: func(c string) string { return basic(nsB+"/"+c, algNone) }, want: 407, say: `proxy token refused: token signing algorithm not allowed: "none"`},
		{name: "B's claims signed HS256 with the cluster's public key as the secret are 407", home: nsB, conn: "alg-confusion",
			auth: func(c string) string { return basic(nsB+"/"+c, hs256) }, want: 407, say: `proxy token refused: token signing algorithm not allowed: "HS256"`},
		{name: "a garbage token is 407", home: nsA, conn: "garbage",
			auth: func(c string) string { return basic(nsA+"/"+c, garbage) }, want: 407, say: "proxy token refused: token is not a well-formed JWT"},
		{name: "no Proxy-Authorization is 407", home: nsA, conn: "no-auth",
			auth: func(string) string { return "" }, want: 407, say: "proxy authentication required"},
		{name: "a valid token in a Bearer Proxy-Authorization is 407", home: nsA, conn: "bearer",
			auth: func(string) string { return "Bearer " + tokA }, want: 407, say: "Proxy-Authorization must use the Basic scheme"},

		// Path tricks: A's valid token, a user that a path-cleaning or
		// case-folding parser would turn into B's connector (or A's
		// namespace with B's connector in the name).
		{name: "path trick ns-a/../ns-b/name is 407", home: nsB, conn: "trick-dotdot",
			auth: trick(func(c string) string { return nsA + "/../" + nsB + "/" + c }), want: 407, say: badUser},
		{name: "path trick ../ns-b/name is 407", home: nsB, conn: "trick-leading-dotdot",
			auth: trick(func(c string) string { return "../" + nsB + "/" + c }), want: 407, say: badUser},
		{name: "path trick ns-a/%2e%2e/ns-b/name is 407", home: nsB, conn: "trick-encoded-dots",
			auth: trick(func(c string) string { return nsA + "/%2e%2e/" + nsB + "/" + c }), want: 407, say: badUser},
		{name: "path trick ns-a%2F..%2Fns-b%2Fname (URL-encoded slashes) is 407", home: nsB, conn: "trick-encoded-slashes",
			auth: trick(func(c string) string { return nsA + "%2F..%2F" + nsB + "%2F" + c }), want: 407, say: badUser},
		{name: "path trick ns-a/%252e%252e%252Fns-b%252Fname (double-encoded) is 407", home: nsB, conn: "trick-double-encoded",
			auth: trick(func(c string) string { return nsA + "/%252e%252e%252F" + nsB + "%252F" + c }), want: 407, say: badUser},
		{name: "path trick ns-b/x/name (three segments) is 407", home: nsB, conn: "trick-three-segments",
			auth: trick(func(c string) string { return nsB + "/x/" + c }), want: 407, say: badUser},
		{name: "path trick ns-b/ (empty name) is 407", home: nsB, conn: "trick-empty-name",
			auth: trick(func(string) string { return nsB + "/" }), want: 407, say: badUser},
		{name: "path trick /name (empty namespace) is 407", home: nsB, conn: "trick-empty-namespace",
			auth: trick(func(c string) string { return "/" + c }), want: 407, say: badUser},
		{name: "path trick of an empty proxy user is 407", home: nsB, conn: "trick-empty-user",
			auth: trick(func(string) string { return "" }), want: 407, say: badUser},
		{name: "path trick NS-B/NAME (uppercase) is 407", home: nsB, conn: "trick-uppercase",
			auth: trick(func(c string) string { return strings.ToUpper(nsB + "/" + c) }), want: 407, say: badUser},
		{name: "path trick ns-b/./name (dot segment) is 407", home: nsB, conn: "trick-dot-segment",
			auth: trick(func(c string) string { return nsB + "/./" + c }), want: 407, say: badUser},
		{name: "path trick ns-b/name/. (trailing dot segment) is 407", home: nsB, conn: "trick-trailing-dot",
			auth: trick(func(c string) string { return nsB + "/" + c + "/." }), want: 407, say: badUser},
		{name: "path trick ns-b/name/ (trailing slash) is 407", home: nsB, conn: "trick-trailing-slash",
			auth: trick(func(c string) string { return nsB + "/" + c + "/" }), want: 407, say: badUser},
		{name: "path trick ns-b/name%00 (NUL) is 407", home: nsB, conn: "trick-nul",
			auth: trick(func(c string) string { return nsB + "/" + c + "%00" }), want: 407, say: badUser},

		{name: "a grant in B that was removed lets A's pod in no more: 403 in its open tunnel and on new requests", home: nsB, conn: "former-grant",
			auth: func(c string) string { return basic(nsB+"/"+c, tokFormer) }, want: 403, say: "serviceaccount " + nsA + "/former " + notAuthorized + nsB + "/former-grant", who: nsA + "/a-former",
			before: func(t *testing.T) {
				if d := time.Until(allowedUntil); d > 0 {
					t.Logf("waiting %s for the allow cached before the grant was removed to expire", d.Round(time.Second))
					time.Sleep(d + time.Second)
				}
			},
			inTunnel: formerClient},
	}

	// Every row's connector and upstreams, created up front.
	ups := map[string]*isolated{"former-grant": former}
	for _, r := range rows {
		if ups[r.conn] != nil {
			if r.conn != "former-grant" {
				t.Fatalf("two rows use the connector %s", r.conn)
			}
			continue
		}
		ups[r.conn] = newIsolated(t, e, r.home, r.conn)
	}

	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			u := ups[r.conn]
			owner := r.owner
			if owner == "" {
				owner = map[string]string{nsA: tokA, nsB: tokB}[r.home]
			}
			control := e.client(t, r.home+"/"+r.conn, tokens.Token(owner))
			waitControl(t, control, u.up.URL+"/control") // the connector is live and synced
			control.CloseIdleConnections()
			if r.before != nil {
				r.before(t)
			}
			seen := u.seen()
			// Only the lines of the row's own requests: waitControl's
			// polls (the former grant's while RBAC caught up) are 403s to
			// the same target too.
			since := len(e.logs.Text())
			path := "/isolation/" + r.conn
			check := func(what string, status int, body string) {
				t.Helper()
				t.Logf("%s: %d %s", what, status, strings.TrimSpace(body))
				if status != r.want || !strings.Contains(body, r.say) {
					t.Errorf("%s: %d %q, want %d saying %q", what, status, body, r.want, r.say)
				}
				for _, s := range secrets {
					if strings.Contains(body, s) {
						t.Errorf("%s: the answer contains a token", what)
					}
				}
			}
			var lines []auditWant
			if r.inTunnel != nil {
				resp, body := tryGet(t, r.inTunnel, u.up.URL+path+"/in-tunnel")
				check("a request in the tunnel opened while allowed", resp, body)
				lines = append(lines, auditWant{what: "the request in the tunnel", target: u.hostport, path: path + "/in-tunnel", status: r.want, body: body})
			}

			auth := r.auth(r.conn)
			header := ""
			if auth != "" {
				header = "Proxy-Authorization: " + auth + "\r\n"
			}
			conn, resp, body := tryTunnel(t, e, u.hostport, header)
			if conn != nil {
				_ = conn.Close()
				t.Errorf("CONNECT %s: 200, the tunnel was opened", u.hostport)
			} else {
				check("CONNECT", resp.StatusCode, body)
				if r.want == http.StatusProxyAuthRequired && resp.Header.Get("Proxy-Authenticate") == "" {
					t.Error("CONNECT: a 407 without Proxy-Authenticate")
				}
				lines = append(lines, auditWant{what: "the CONNECT", protocol: "connect", target: u.hostport, method: http.MethodConnect, status: r.want, body: body})
			}

			presp, pbody := absoluteRequest(t, e, u.plain.URL+path, auth)
			check("GET "+u.plain.URL+path, presp.StatusCode, pbody)
			if r.want == http.StatusProxyAuthRequired && presp.Header.Get("Proxy-Authenticate") == "" {
				t.Error("absolute-URI request: a 407 without Proxy-Authenticate")
			}
			lines = append(lines, auditWant{what: "the absolute-URI request", protocol: "http", target: u.plainHostport, method: http.MethodGet, path: path, status: r.want, body: pbody})

			for _, w := range lines {
				line := w.find(t, e, since)
				if line == "" {
					continue
				}
				if r.who != "" {
					podNS, podName, _ := strings.Cut(r.who, "/")
					if !strings.Contains(line, `"podNamespace"="`+podNS+`"`) || !strings.Contains(line, `"podName"="`+podName+`"`) {
						t.Errorf("%s: the audit line does not name the pod %s: %s", w.what, r.who, line)
					}
				} else if strings.Contains(line, `"podNamespace"=`) {
					t.Errorf("%s: the audit line names a pod of a token that was refused: %s", w.what, line)
				}
			}

			time.Sleep(100 * time.Millisecond) // a dial the gateway began would have been accepted by now
			if now := u.seen(); now != seen {
				t.Errorf("the upstreams saw %+v during the denied requests (before: %+v); hosts %v, %v", now, seen, u.up.hostsSeen(), u.plain.hostsSeen())
			}

			// The control: the connector's owner reaches both upstreams.
			if resp, body := tryGet(t, control, u.up.URL+"/control"); resp != http.StatusOK {
				t.Errorf("control through CONNECT: %d %q", resp, body)
			}
			if resp, body := tryGet(t, control, u.plain.URL+"/control"); resp != http.StatusOK {
				t.Errorf("control through an absolute URI: %d %q", resp, body)
			}
			if after := u.seen(); after.tlsRequests != seen.tlsRequests+1 || after.plainRequests != seen.plainRequests+1 {
				t.Errorf("the controls reached the upstreams %+v, from %+v", after, seen)
			}
		})
	}

	if err := e.logs.Check(); err != nil {
		t.Error(err)
	}
	logs := e.logs.Text()
	for i, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("token #%d of the test is in the gateway's log", i)
		}
	}
	if own.seen() != (upstreamSeen{}) {
		t.Errorf("A's own connector, named with B's in one row, saw %+v", own.seen())
	}
}

// isolated is a row's connector with its two upstreams: an HTTPS one at
// spec.address and a plain one at an address extension. Both count the
// connections they accept as well as the requests.
type isolated struct {
	up                      *recorder
	plain                   *plainRecorder
	hostport, plainHostport string
	tlsConns, plainConns    atomic.Int64
}

type upstreamSeen struct{ tlsConns, tlsRequests, plainConns, plainRequests int64 }

func (u *isolated) seen() upstreamSeen {
	return upstreamSeen{u.tlsConns.Load(), int64(u.up.count()), u.plainConns.Load(), int64(u.plain.count())}
}

func newIsolated(t *testing.T, e *env, ns, name string) *isolated {
	t.Helper()
	u := &isolated{up: &recorder{}, plain: &plainRecorder{}}
	u.up.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		u.up.recordHost(req.Host)
		u.up.record(req.Header)
		_, _ = io.WriteString(w, "hello from upstream")
	}))
	u.up.Listener = &countingListener{Listener: u.up.Listener, n: &u.tlsConns}
	u.up.EnableHTTP2 = true
	u.up.StartTLS()
	t.Cleanup(u.up.Close)
	u.plain.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		u.plain.recordHost(req.Host)
		u.plain.record(req.Header)
		_, _ = io.WriteString(w, "hello from the plain upstream")
	}))
	u.plain.Listener = &countingListener{Listener: u.plain.Listener, n: &u.plainConns}
	u.plain.Start()
	t.Cleanup(u.plain.Close)
	u.hostport, u.plainHostport = strings.TrimPrefix(u.up.URL, "https://"), strings.TrimPrefix(u.plain.URL, "http://")

	sec := bearerSecret("credential-of-" + name)
	sec.Namespace, sec.Name = ns, name+"-secret"
	ca := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-ca"}, Data: map[string][]byte{"ca.crt": u.up.caPEM()}}
	c := &connectorsv1alpha1.Connector{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: connectorsv1alpha1.ConnectorSpec{
			ConnectorClassName: "k8s", Address: u.up.URL,
			AddressExtensions: []connectorsv1alpha1.AddressExtension{{Name: "plain", Value: u.plain.URL}},
			Auth:              connectorsv1alpha1.ConnectorAuth{Name: "bearerTokenAuth", SecretRef: &connectorsv1alpha1.SecretReference{Name: sec.Name}},
			CACertSecretRef:   &connectorsv1alpha1.LocalSecretReference{Name: ca.Name},
		},
	}
	if err := cp.Client.Create(t.Context(), sec); err != nil {
		t.Fatal(err)
	}
	if err := cp.Client.Create(t.Context(), ca); err != nil {
		t.Fatal(err)
	}
	if err := cp.Client.Create(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	// Ready, as the reconciler would publish it; the rows wait for the
	// gateway to see it (their control).
	cp.PublishStatus(t, c, metav1.ConditionTrue, "", "", "http://"+e.addr)
	return u
}

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// auditWant is the audit line a denied request must leave.
type auditWant struct {
	what                           string
	protocol, target, method, path string
	status                         int
	body                           string // the answer: the reason must be its line
}

// find waits for the audit line of the request and returns it, or fails
// and returns "". The target is the row's own, so one line is expected.
func (w auditWant) find(t *testing.T, e *env, since int) string {
	t.Helper()
	keys := []string{`"msg"="request"`, `"target"="` + w.target + `"`, `"path"="` + w.path + `"`, `"status"=` + strconv.Itoa(w.status) + ` `}
	if w.protocol != "" {
		keys = append(keys, `"protocol"="`+w.protocol+`"`)
	}
	if w.method != "" {
		keys = append(keys, `"method"="`+w.method+`"`)
	}
	var found []string
	deadline := time.Now().Add(5 * time.Second)
	for {
		found = found[:0]
		for _, line := range strings.Split(e.logs.Text()[since:], "\n") {
			if !strings.Contains(line, "audit") {
				continue
			}
			all := true
			for _, k := range keys {
				if !strings.Contains(line, k) {
					all = false
					break
				}
			}
			if all {
				found = append(found, line)
			}
		}
		if len(found) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(found) != 1 {
		t.Errorf("%s: %d audit lines with %v, want 1: %q", w.what, len(found), keys, found)
		return ""
	}
	if reason := `"reason"=` + strconv.Quote(strings.TrimSpace(w.body)); !strings.Contains(found[0], reason) {
		t.Errorf("%s: the audit line does not give the reason of the answer (%s): %s", w.what, reason, found[0])
	}
	return found[0]
}

// absoluteRequest sends GET url (an absolute http:// URI) to the gateway
// with the Proxy-Authorization value auth ("": none).
func absoluteRequest(t *testing.T, e *env, url, auth string) (*http.Response, string) {
	t.Helper()
	conn, err := (&net.Dialer{}).DialContext(t.Context(), "tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	host := strings.TrimPrefix(url, "http://")
	host, _, _ = strings.Cut(host, "/")
	req := "GET " + url + " HTTP/1.1\r\nHost: " + host + "\r\n"
	if auth != "" {
		req += "Proxy-Authorization: " + auth + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"Connection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	return resp, string(b)
}

// tryGet is get that returns a transport error as status 0.
func tryGet(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitControl waits until the client gets 200 from u (the gateway's
// informer has the connector).
func waitControl(t *testing.T, c *http.Client, u string) {
	t.Helper()
	var status int
	var body string
	deadline := time.Now().Add(15 * time.Second)
	for {
		if status, body = tryGet(t, c, u); status == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("control GET %s: %d %q, want 200", u, status, body)
		}
		c.CloseIdleConnections()
		time.Sleep(50 * time.Millisecond)
	}
}

// boundToken is a token bound to a new pod of ns with the audiences (nil:
// the API server's own).
func boundToken(t *testing.T, ns, pod string, audiences []string) string {
	t.Helper()
	p := cp.CreatePod(t, ns, pod, "default")
	tok, _ := cp.RequestToken(t, ns, "default", testbed.TokenOptions{Audiences: audiences, BoundPod: p, Expiration: 30 * time.Minute})
	return tok
}

// deletedPodToken is a proxy token of a pod that the gateway's pipeline
// took (so it is cached) before the pod was deleted, once the pipeline
// refuses it.
func deletedPodToken(t *testing.T, e *env, ns, pod string) string {
	t.Helper()
	tok, p := cp.PodToken(t, ns, pod, "default")
	if _, err := e.pipeline.Validate(t.Context(), tok); err != nil {
		t.Fatalf("the token of pod %s before its deletion: %v", pod, err)
	}
	if err := cp.Clientset.CoreV1().Pods(ns).Delete(t.Context(), p.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the revocation of the deleted pod's token", func() bool {
		_, err := e.pipeline.Validate(t.Context(), tok)
		return errors.Is(err, tokens.ErrRevoked)
	})
	return string(tok)
}

// grant lets the ServiceAccount saNS/sa get the connector ns/name (a Role
// and a RoleBinding named after it).
func grant(t *testing.T, ns, name, saNS, sa string) {
	t.Helper()
	rbac := cp.Clientset.RbacV1()
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "use-" + name},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{connectorsv1alpha1.Group}, Resources: []string{"connectors"}, ResourceNames: []string{name}, Verbs: []string{"get"}}},
	}
	if _, err := rbac.Roles(ns).Create(t.Context(), role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "use-" + name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: saNS, Name: sa}},
	}
	if _, err := rbac.RoleBindings(ns).Create(t.Context(), binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// ungrant removes what grant created.
func ungrant(t *testing.T, ns, name string) {
	t.Helper()
	rbac := cp.Clientset.RbacV1()
	if err := rbac.RoleBindings(ns).Delete(t.Context(), "use-"+name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := rbac.Roles(ns).Delete(t.Context(), "use-"+name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
}

var b64 = base64.RawURLEncoding

// jwtParts splits a compact JWS into its decoded header and payload.
func jwtParts(t *testing.T, tok string) (header, payload map[string]any, rawHeader, rawPayload, sig string) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("a token of %d parts", len(parts))
	}
	for i, into := range []*map[string]any{&header, &payload} {
		b, err := b64.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, into); err != nil {
			t.Fatal(err)
		}
	}
	return header, payload, parts[0], parts[1], parts[2]
}

func encodeJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b64.EncodeToString(b)
}

// rewriteClaims keeps tok's header and signature and rewrites its claims
// from namespace from to namespace to.
func rewriteClaims(t *testing.T, tok, from, to string) string {
	t.Helper()
	_, _, h, p, sig := jwtParts(t, tok)
	raw, err := b64.DecodeString(p)
	if err != nil {
		t.Fatal(err)
	}
	claims := strings.ReplaceAll(string(raw), `"`+from+`"`, `"`+to+`"`)
	claims = strings.ReplaceAll(claims, ":"+from+":", ":"+to+":")
	if claims == string(raw) {
		t.Fatal("the claims name no namespace to rewrite")
	}
	return h + "." + b64.EncodeToString([]byte(claims)) + "." + sig
}

// signWithNewKey signs tok's header and claims (its algorithm and key ID
// kept) with a fresh key of the algorithm's kind.
func signWithNewKey(t *testing.T, tok string) string {
	t.Helper()
	header, _, h, p, _ := jwtParts(t, tok)
	sum := sha256.Sum256([]byte(h + "." + p))
	var sig []byte
	switch header["alg"] {
	case "ES256":
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		sig = append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
	case "RS256":
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		if sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:]); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("the cluster signs with %v: add it here", header["alg"])
	}
	return h + "." + p + "." + b64.EncodeToString(sig)
}

// unsigned is tok's claims with alg none and no signature.
func unsigned(t *testing.T, tok string) string {
	t.Helper()
	header, _, _, p, _ := jwtParts(t, tok)
	header["alg"] = "none"
	return encodeJSON(t, header) + "." + p + "."
}

// signHS256WithClusterKey signs tok's claims with HS256, the secret being
// the PEM of the cluster's public key that signed tok (the old algorithm
// confusion attack).
func signHS256WithClusterKey(t *testing.T, tok string) string {
	t.Helper()
	header, _, _, p, _ := jwtParts(t, tok)
	raw, err := cp.Clientset.CoreV1().RESTClient().Get().AbsPath("/openid/v1/jwks").DoRaw(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var jwks struct {
		Keys []struct{ Kid, Kty, Crv, N, E, X, Y string } `json:"keys"`
	}
	if err := json.Unmarshal(raw, &jwks); err != nil {
		t.Fatal(err)
	}
	var pub any
	for _, k := range jwks.Keys {
		if k.Kid != header["kid"] {
			continue
		}
		switch {
		case k.Kty == "RSA":
			n, err1 := b64.DecodeString(k.N)
			ev, err2 := b64.DecodeString(k.E)
			if err := errors.Join(err1, err2); err != nil {
				t.Fatal(err)
			}
			pub = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(ev).Int64())}
		case k.Kty == "EC" && k.Crv == "P-256":
			x, err1 := b64.DecodeString(k.X)
			y, err2 := b64.DecodeString(k.Y)
			if err := errors.Join(err1, err2); err != nil {
				t.Fatal(err)
			}
			key, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
			if err != nil {
				t.Fatal(err)
			}
			pub = key
		}
	}
	if pub == nil {
		t.Fatalf("no RSA or P-256 key %v in the cluster's JWKS %s", header["kid"], raw)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	header["alg"] = "HS256"
	h := encodeJSON(t, header)
	mac := hmac.New(sha256.New, secret)
	_, _ = mac.Write([]byte(h + "." + p))
	return h + "." + p + "." + b64.EncodeToString(mac.Sum(nil))
}
