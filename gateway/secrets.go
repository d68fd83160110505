package gateway

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
)

// secretWatches holds the only Secrets the gateway reads: each Secret that a
// connector references has its own single-object watch (field selector
// metadata.name, as the kubelet watches the Secrets of its pods), counted by
// the connectors that reference it and stopped when the last one lets go;
// the labelled CA Secrets of the install namespace have one label-selected
// watch. No Secret outside those is ever listed, watched or read.
//
// Objects handed out are shared with the watch stores: read only.
type secretWatches struct {
	client  kubernetes.Interface
	max     int // watches beyond it: read from the API server per use
	log     logr.Logger
	watched prometheus.Gauge
	reads   prometheus.Counter

	mu      sync.Mutex
	ctx     context.Context                                 // of run; nil before
	refs    map[types.NamespacedName][]types.NamespacedName // connector → its Secrets
	watches map[types.NamespacedName]*secretWatch           // referenced Secrets
	running int                                             // of them, watched
	warned  bool                                            // the max was reached (logged once)

	caStore  toolscache.Store
	caSynced func() bool
	caRun    func(context.Context)

	goroutines sync.WaitGroup // the reflectors, joined by wait
}

type secretWatch struct {
	users  int
	store  toolscache.Store // nil: not watched (over max), read per use
	synced func() bool
	cancel context.CancelFunc // nil until running
	run    func(context.Context)
}

func newSecretWatches(client kubernetes.Interface, namespace string, max int, log logr.Logger, m *metrics) *secretWatches {
	s := &secretWatches{
		client: client, max: max, log: log, watched: m.secretWatches, reads: m.secretReads,
		refs:    map[types.NamespacedName][]types.NamespacedName{},
		watches: map[types.NamespacedName]*secretWatch{},
	}
	if namespace != "" {
		sel := labels.SelectorFromSet(labels.Set{connectorsv1alpha1.CACertLabel: "true"}).String()
		s.caStore, s.caSynced, s.caRun = s.informer(namespace, func(o *metav1.ListOptions) { o.LabelSelector = sel })
	} else {
		s.caSynced = func() bool { return true }
	}
	return s
}

// SecretClient returns the client to pass as Options.Client: cfg's, with
// response compression off, since each open watch would otherwise hold a
// gzip reader (about 40 KiB) for the few bytes a single Secret sends.
func SecretClient(cfg *rest.Config) (kubernetes.Interface, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.DisableCompression = true
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("gateway: Secret client: %w", err)
	}
	return cs, nil
}

// informer builds the store and runner of a watch of Secrets in ns: a bare
// reflector into a store (no event queue or handlers: nothing reacts to
// Secret events, requests read the store), to keep each watch small.
func (s *secretWatches) informer(ns string, selector func(*metav1.ListOptions)) (toolscache.Store, func() bool, func(context.Context)) {
	secrets := s.client.CoreV1().Secrets(ns)
	lw := &toolscache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			selector(&o)
			return secrets.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			selector(&o)
			return secrets.Watch(ctx, o)
		},
	}
	store := toolscache.NewStore(toolscache.MetaNamespaceKeyFunc)
	r := toolscache.NewReflectorWithOptions(lw, &corev1.Secret{}, store, toolscache.ReflectorOptions{
		Name: "secrets in " + ns, Logger: &s.log,
	})
	return store, func() bool { return r.LastSyncResourceVersion() != "" }, r.RunWithContext
}

// run starts the CA watch and the watches registered so far; all of them
// stop when ctx ends.
func (s *secretWatches) run(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctx = ctx
	if s.caRun != nil {
		s.goroutines.Go(func() { s.caRun(ctx) })
	}
	for _, w := range s.watches {
		s.startLocked(w)
	}
}

func (s *secretWatches) startLocked(w *secretWatch) {
	if s.ctx == nil || w.store == nil || w.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	w.cancel = cancel
	s.goroutines.Go(func() { w.run(ctx) })
}

// wait returns once every reflector started by run has ended (after the
// context of run ended).
func (s *secretWatches) wait() { s.goroutines.Wait() }

// referencedSecrets are the Secrets a connector reads through the gateway.
func referencedSecrets(c *connectorsv1alpha1.Connector) []types.NamespacedName {
	names := c.ReferencedSecrets()
	keys := make([]types.NamespacedName, 0, len(names))
	for _, n := range names {
		keys = append(keys, types.NamespacedName{Namespace: c.Namespace, Name: n})
	}
	return keys
}

// handler follows the connectors and keeps their Secrets watched.
func (s *secretWatches) handler() toolscache.ResourceEventHandler {
	set := func(obj any) {
		if c, ok := obj.(*connectorsv1alpha1.Connector); ok {
			s.setRefs(types.NamespacedName{Namespace: c.Namespace, Name: c.Name}, referencedSecrets(c))
		}
	}
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { set(obj) },
		UpdateFunc: func(_, obj any) { set(obj) },
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if c, ok := obj.(*connectorsv1alpha1.Connector); ok {
				s.setRefs(types.NamespacedName{Namespace: c.Namespace, Name: c.Name}, nil)
			}
		},
	}
}

// setRefs records which Secrets a connector references now, starting the
// watches that gain their first user and stopping those that lose their last.
func (s *secretWatches) setRefs(connector types.NamespacedName, keys []types.NamespacedName) {
	slices.SortFunc(keys, cmpKey)
	keys = slices.Compact(keys)
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.refs[connector]
	if slices.Equal(old, keys) {
		return
	}
	if len(keys) == 0 {
		delete(s.refs, connector)
	} else {
		s.refs[connector] = keys
	}
	for _, k := range keys {
		w := s.watches[k]
		if w == nil {
			w = &secretWatch{}
			s.watches[k] = w
			s.watchLocked(k, w)
		}
		w.users++
	}
	for _, k := range old {
		w := s.watches[k]
		if w == nil {
			continue
		}
		if w.users--; w.users > 0 {
			continue
		}
		delete(s.watches, k)
		if w.store != nil {
			if w.cancel != nil {
				w.cancel()
			}
			s.running--
			s.watched.Dec()
		}
	}
}

// watchLocked gives w its watch and starts it, unless max watches run
// (then w stays unwatched: read per use, and watched later when a slot is
// free, see get).
func (s *secretWatches) watchLocked(k types.NamespacedName, w *secretWatch) {
	if s.running >= s.max {
		if !s.warned {
			s.warned = true
			s.log.Info("too many referenced Secrets to watch each: the others are read from the API server on use", "max", s.max)
		}
		return
	}
	w.store, w.synced, w.run = s.informer(k.Namespace, func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", k.Name).String()
	})
	s.running++
	s.watched.Inc()
	s.startLocked(w)
}

func cmpKey(a, b types.NamespacedName) int {
	return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
}

// get returns the Secret from its watch, or from the API server while the
// watch has not synced (a connector just created) or when it has none.
func (s *secretWatches) get(ctx context.Context, key types.NamespacedName) (*corev1.Secret, error) {
	var store toolscache.Store
	var synced func() bool
	s.mu.Lock()
	if w := s.watches[key]; w != nil {
		if w.store == nil {
			s.watchLocked(key, w) // a slot may have been freed since
		}
		store, synced = w.store, w.synced
	}
	s.mu.Unlock()
	if store != nil && synced() {
		obj, ok, err := store.GetByKey(key.String())
		switch {
		case err != nil:
			return nil, fmt.Errorf("secret %s: %w", key, err)
		case !ok:
			return nil, fmt.Errorf("secret %s: %w", key, apierrors.NewNotFound(corev1.Resource("secrets"), key.Name))
		}
		return obj.(*corev1.Secret), nil
	}
	s.reads.Inc()
	sec, err := s.client.CoreV1().Secrets(key.Namespace).Get(ctx, key.Name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", key, err)
	}
	return sec, nil
}

// caSecrets returns the labelled CA Secrets of the install namespace, by name.
func (s *secretWatches) caSecrets() []*corev1.Secret {
	if s.caStore == nil {
		return nil
	}
	var out []*corev1.Secret
	for _, obj := range s.caStore.List() {
		if sec, ok := obj.(*corev1.Secret); ok {
			out = append(out, sec)
		}
	}
	slices.SortFunc(out, func(a, b *corev1.Secret) int { return strings.Compare(a.Name, b.Name) })
	return out
}
