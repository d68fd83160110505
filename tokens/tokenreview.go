package tokens

import (
	"context"
	"errors"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Extra keys the API server sets on ServiceAccount users of pod-bound tokens.
const (
	extraPodName = "authentication.kubernetes.io/pod-name"
	extraPodUID  = "authentication.kubernetes.io/pod-uid"
)

// Reviewer asks the API server whether a token is valid (TokenReview). It
// is authoritative: it also proves that the Pod a token is bound to still
// exists.
type Reviewer struct {
	client    kubernetes.Interface
	audiences []string
	observe   func(time.Duration, error)
}

// NewReviewer returns a Reviewer that reviews tokens for the audiences.
// Proxy tokens need []string{DefaultAudience}: without spec.audiences the API
// server checks against its own audience, which is right only for callers'
// own API tokens (the token API's authentication).
func NewReviewer(client kubernetes.Interface, audiences []string) (*Reviewer, error) {
	if client == nil {
		return nil, errors.New("tokens: the Reviewer needs a Kubernetes client")
	}
	return &Reviewer{client: client, audiences: audiences, observe: func(time.Duration, error) {}}, nil
}

// Review returns the ServiceAccount identity the API server authenticated.
// The identity's expiry is not known to the API server: callers that have
// the verified claims use theirs.
func (r *Reviewer) Review(ctx context.Context, token Token) (Identity, error) {
	start := time.Now()
	review, err := r.client.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: string(token), Audiences: r.audiences},
	}, metav1.CreateOptions{})
	r.observe(time.Since(start), err)
	if err != nil {
		if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) {
			return Identity{}, fmt.Errorf("%w: this component may not create TokenReviews: %w", ErrUnavailable, err)
		}
		return Identity{}, fmt.Errorf("%w: TokenReview: %w", ErrUnavailable, err)
	}
	st := review.Status
	if !st.Authenticated {
		reason := st.Error
		if reason == "" {
			reason = "not authenticated"
		}
		return Identity{}, fmt.Errorf("%w: %s", ErrRejected, reason)
	}
	ns, name, ok := parseServiceAccountUsername(st.User.Username)
	if !ok {
		return Identity{}, fmt.Errorf("%w: user %q", ErrNotServiceAccount, st.User.Username)
	}
	id := Identity{Namespace: ns, ServiceAccountName: name, ServiceAccountUID: st.User.UID}
	if v := st.User.Extra[extraPodName]; len(v) == 1 {
		id.PodName = v[0]
	}
	if v := st.User.Extra[extraPodUID]; len(v) == 1 {
		id.PodUID = v[0]
	}
	return id, nil
}
