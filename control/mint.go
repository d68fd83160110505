package control

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/connectors-io/connectors/tokens"
)

// mintFor mints a proxy token of the caller's own ServiceAccount, bound to
// the caller's pod when the caller's own token is (so that deleting the pod
// revokes it).
func (s *Server) mintFor(ctx context.Context, caller tokens.Identity, lifetime time.Duration) (tokens.Token, time.Time, error) {
	if caller.PodName != "" && caller.PodUID != "" {
		return s.opts.Minter.MintForPod(ctx, tokens.PodRef{
			Namespace: caller.Namespace, Name: caller.PodName, UID: types.UID(caller.PodUID), ServiceAccount: caller.ServiceAccountName,
		}, lifetime)
	}
	return s.opts.Minter.MintForServiceAccount(ctx, caller.Namespace, caller.ServiceAccountName, lifetime)
}
