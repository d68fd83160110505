//go:build integration

package testbed_test

import (
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/connectors-io/connectors/internal/testbed"
)

func TestControlPlaneIssuesPodBoundTokensThatTheAPIServerAccepts(t *testing.T) {
	cp := testbed.StartControlPlane(t)
	cp.CreateNamespace(t, "team-a")
	cp.CreateServiceAccount(t, "team-a", "builder")
	pod := cp.CreatePod(t, "team-a", "job-1", "builder")

	token, exp := cp.RequestToken(t, "team-a", "builder", testbed.TokenOptions{
		Audiences: []string{"connectors-proxy"}, Expiration: 10 * time.Minute, BoundPod: pod,
	})
	if until := time.Until(exp); until < 9*time.Minute || until > 11*time.Minute {
		t.Errorf("token expires in %v, want about 10m", until)
	}
	if strings.Count(token, ".") != 2 {
		t.Fatal("the token is not a JWT")
	}

	review, err := cp.Clientset.AuthenticationV1().TokenReviews().Create(t.Context(), &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: []string{"connectors-proxy"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !review.Status.Authenticated {
		t.Fatalf("TokenReview rejected the token: %s", review.Status.Error)
	}
	if got, want := review.Status.User.Username, "system:serviceaccount:team-a:builder"; got != want {
		t.Errorf("user = %q, want %q", got, want)
	}
	if got := review.Status.User.Extra["authentication.kubernetes.io/pod-uid"]; len(got) != 1 || got[0] != string(pod.UID) {
		t.Errorf("pod-uid extra = %v, want %s", got, pod.UID)
	}

	out := cp.MustKubectl(t, "", "version", "-o", "json")
	if !strings.Contains(out, `"gitVersion": "`+testbed.KubeVersion+`"`) {
		t.Errorf("kubectl version does not report %s for client and server:\n%s", testbed.KubeVersion, out)
	}
}

func TestRedisStopsAndRestartsOnTheSameAddress(t *testing.T) {
	r := testbed.StartRedis(t)
	if err := r.Ping(t); err != nil {
		t.Fatal(err)
	}
	addr := r.Addr
	r.Stop(t)
	if err := r.Ping(t); err == nil {
		t.Fatal("redis still answers after Stop")
	}
	r.Restart(t)
	if r.Addr != addr {
		t.Errorf("restarted on %s, want %s", r.Addr, addr)
	}
	if err := r.Ping(t); err != nil {
		t.Fatal(err)
	}
}
