package tokens

import (
	"context"
	"errors"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

const (
	// DefaultAudience is the audience of proxy tokens.
	DefaultAudience = "connectors-proxy"
	// DefaultExpiration is the lifetime of a minted token.
	DefaultExpiration = 30 * time.Minute
	// MinExpiration is the shortest lifetime the API server grants.
	MinExpiration = 10 * time.Minute
)

// PodRef names the Pod a token is bound to and the ServiceAccount it runs as.
type PodRef struct {
	// Namespace of the Pod.
	Namespace string
	// Name of the Pod.
	Name string
	// UID of the Pod; the API server refuses a binding whose UID differs.
	UID types.UID
	// ServiceAccount the Pod runs as.
	ServiceAccount string
}

// MinterOptions configure a Minter.
type MinterOptions struct {
	// Client creates the TokenRequests. Required.
	Client kubernetes.Interface
	// Audience of minted tokens. Default DefaultAudience.
	Audience string
}

// Minter asks the API server for short-lived ServiceAccount tokens.
type Minter struct {
	opts MinterOptions
}

// NewMinter checks opts and fills defaults.
func NewMinter(opts MinterOptions) (*Minter, error) {
	if opts.Client == nil {
		return nil, errors.New("tokens: MinterOptions.Client is required")
	}
	if opts.Audience == "" {
		opts.Audience = DefaultAudience
	}
	return &Minter{opts: opts}, nil
}

// MintForPod returns a token of the Pod's ServiceAccount bound to the Pod,
// valid for expiration (0 means DefaultExpiration; less than MinExpiration
// is an error, as the API server would refuse it).
func (m *Minter) MintForPod(ctx context.Context, pod PodRef, expiration time.Duration) (Token, time.Time, error) {
	if pod.Name == "" || pod.UID == "" {
		return "", time.Time{}, errors.New("tokens: a pod-bound token needs the pod's name and UID")
	}
	return m.mint(ctx, pod.Namespace, pod.ServiceAccount, expiration, &authenticationv1.BoundObjectReference{
		Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID,
	})
}

// MintForServiceAccount returns a token of the ServiceAccount that is not
// bound to a Pod (so no Pod deletion revokes it; it expires).
func (m *Minter) MintForServiceAccount(ctx context.Context, namespace, serviceAccount string, expiration time.Duration) (Token, time.Time, error) {
	return m.mint(ctx, namespace, serviceAccount, expiration, nil)
}

func (m *Minter) mint(ctx context.Context, namespace, serviceAccount string, expiration time.Duration, bound *authenticationv1.BoundObjectReference) (Token, time.Time, error) {
	if expiration == 0 {
		expiration = DefaultExpiration
	}
	if expiration < MinExpiration {
		return "", time.Time{}, fmt.Errorf("tokens: expiration %s is below the API server's minimum of %s", expiration, MinExpiration)
	}
	if namespace == "" || serviceAccount == "" {
		return "", time.Time{}, errors.New("tokens: a token needs a namespace and a ServiceAccount")
	}
	secs := int64(expiration / time.Second)
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences:         []string{m.opts.Audience},
		ExpirationSeconds: &secs,
		BoundObjectRef:    bound,
	}}
	resp, err := m.opts.Client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, serviceAccount, req, metav1.CreateOptions{})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("tokens: TokenRequest for serviceaccount %s/%s: %w", namespace, serviceAccount, err)
	}
	return Token(resp.Status.Token), resp.Status.ExpirationTimestamp.Time, nil
}
