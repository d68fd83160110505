package tokens

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
)

// revokeMemory is how long a revoked pod is remembered: longer than any
// token the API server issues for it may be cached.
const revokeMemory = 2 * time.Hour

// Revoke drops every cached result of tokens bound to the pod, here and —
// through Redis — on every replica, and refuses such tokens from now on.
// A Redis failure is returned after the local revocation took effect.
func (p *Pipeline) Revoke(ctx context.Context, podUID string) error {
	if podUID == "" {
		return errors.New("tokens: revoke needs a pod UID")
	}
	p.local.revoke(podUID, p.opts.Now().Add(revokeMemory))
	p.metrics.revocations.Inc()
	if p.shared == nil {
		return nil
	}
	return p.shared.revoke(ctx, podUID, revokeMemory)
}

// Start listens for the revocations of other replicas until ctx ends. It
// returns at once without Redis. go-redis resubscribes after a connection
// loss by itself.
func (p *Pipeline) Start(ctx context.Context) error {
	if p.shared == nil {
		<-ctx.Done()
		return nil
	}
	sub := p.shared.client.Subscribe(ctx, p.shared.channel())
	defer func() { _ = sub.Close() }()
	msgs := sub.Channel()
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-msgs:
			if !ok {
				return nil
			}
			p.local.revoke(m.Payload, p.opts.Now().Add(revokeMemory))
		}
	}
}

// Subscribed waits until the revocation subscription of Start is active,
// for callers (and tests) that must not miss a revocation.
func (p *Pipeline) Subscribed(ctx context.Context) error {
	if p.shared == nil {
		return nil
	}
	for {
		n, err := p.shared.client.PubSubNumSub(ctx, p.shared.channel()).Result()
		if err == nil && n[p.shared.channel()] > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the revocation subscription: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Revoker drops the cached results of a pod's tokens.
type Revoker interface {
	// Revoke is called with the UID of a deleted pod.
	Revoke(ctx context.Context, podUID string) error
}

// PodWatcherOptions configure a PodWatcher.
type PodWatcherOptions struct {
	// Client lists and watches pod metadata (never whole pods). Required.
	Client metadata.Interface
	// Revoker is told of every deleted pod. Required.
	Revoker Revoker
	// Resync is the informer's resync period. Default 0 (none).
	Resync time.Duration
	// Logger receives revocation failures. Default: discard.
	Logger logr.Logger
}

// PodWatcher revokes the tokens of deleted pods. Run it in one component per
// cluster (or in each: revocation is idempotent).
type PodWatcher struct {
	opts PodWatcherOptions
}

// NewPodWatcher checks opts.
func NewPodWatcher(opts PodWatcherOptions) (*PodWatcher, error) {
	if opts.Client == nil || opts.Revoker == nil {
		return nil, errors.New("tokens: PodWatcherOptions.Client and .Revoker are required")
	}
	return &PodWatcher{opts: opts}, nil
}

// Start watches pod deletions until ctx ends.
func (w *PodWatcher) Start(ctx context.Context) error {
	factory := metadatainformer.NewSharedInformerFactory(w.opts.Client, w.opts.Resync)
	informer := factory.ForResource(schema.GroupVersionResource{Version: "v1", Resource: "pods"}).Informer()
	_, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			m, ok := obj.(*metav1.PartialObjectMetadata)
			if !ok {
				return
			}
			if err := w.opts.Revoker.Revoke(ctx, string(m.UID)); err != nil {
				w.opts.Logger.Error(err, "revoke the tokens of a deleted pod", "namespace", m.Namespace, "pod", m.Name)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("tokens: pod watch: %w", err)
	}
	factory.Start(ctx.Done())
	<-ctx.Done()
	factory.Shutdown()
	return nil
}
