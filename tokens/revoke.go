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
	"k8s.io/client-go/util/workqueue"
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
// only waits for ctx without Redis. While Redis is unreachable it tries to
// subscribe again every RedisRetry; go-redis resubscribes after a lost
// connection by itself.
func (p *Pipeline) Start(ctx context.Context) error {
	if p.shared == nil {
		p.subscribedOnce.Do(func() { close(p.subscribed) })
		<-ctx.Done()
		return nil
	}
	sub := p.shared.client.Subscribe(ctx, p.shared.channel())
	defer func() { _ = sub.Close() }()
	for {
		// The first reply on a subscription is its confirmation.
		if _, err := sub.Receive(ctx); err == nil {
			break
		} else if ctx.Err() != nil {
			return nil
		} else {
			p.shared.observe(err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(p.opts.RedisRetry):
		}
	}
	p.subscribedOnce.Do(func() { close(p.subscribed) })
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

// Subscribed waits until Start listens for revocations, for callers (and
// tests) that must not miss one.
func (p *Pipeline) Subscribed(ctx context.Context) error {
	select {
	case <-p.subscribed:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for the revocation subscription: %w", ctx.Err())
	}
}

// +kubebuilder:rbac:groups="",resources=pods,verbs=list;watch

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

// Start watches pod deletions until ctx ends. A revocation that fails (Redis
// unreachable) is retried with backoff until it succeeds or ctx ends.
func (w *PodWatcher) Start(ctx context.Context) error {
	queue := workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](100*time.Millisecond, 30*time.Second),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "pod-revocations"},
	)
	factory := metadatainformer.NewSharedInformerFactory(w.opts.Client, w.opts.Resync)
	informer := factory.ForResource(schema.GroupVersionResource{Version: "v1", Resource: "pods"}).Informer()
	_, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if m, ok := obj.(*metav1.PartialObjectMetadata); ok && m.UID != "" {
				queue.Add(string(m.UID))
			}
		},
	})
	if err != nil {
		queue.ShutDown()
		return fmt.Errorf("tokens: pod watch: %w", err)
	}
	factory.Start(ctx.Done())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			uid, shutdown := queue.Get()
			if shutdown {
				return
			}
			if err := w.opts.Revoker.Revoke(ctx, uid); err != nil && ctx.Err() == nil {
				w.opts.Logger.Error(err, "revoke the tokens of a deleted pod; retrying", "podUID", uid)
				queue.AddRateLimited(uid)
			} else {
				queue.Forget(uid)
			}
			queue.Done(uid)
		}
	}()
	<-ctx.Done()
	queue.ShutDown()
	factory.Shutdown()
	<-done
	return nil
}
