package reconciler

import (
	"context"
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/source"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
)

// ErrQueueFull is returned by Enqueue when the controller is behind (or,
// on a replica that does not lead, no controller reads the queue yet).
var ErrQueueFull = errors.New("the trigger queue is full")

// Queue hands triggers to the watch-mode controllers: Enqueue puts the
// connectors (and the class) a change concerns into the controllers' work
// queues, through a buffered channel (controller-runtime's source.Channel).
// Only the controllers of the elected leader run, so only the leader
// reconciles; on the other replicas the triggers wait in the buffer until
// their replica leads. Pass it as WatchOptions.Triggers.
type Queue struct {
	connectors chan event.TypedGenericEvent[*connectorsv1alpha1.Connector]
	classes    chan event.TypedGenericEvent[*connectorsv1alpha1.ConnectorClass]
	reader     client.Reader // the manager's cache; set by SetupWithManager
	namespace  string
}

// NewQueue returns a queue that buffers capacity triggers (default 1024).
func NewQueue(capacity int) *Queue {
	if capacity <= 0 {
		capacity = 1024
	}
	return &Queue{
		connectors: make(chan event.TypedGenericEvent[*connectorsv1alpha1.Connector], capacity),
		classes:    make(chan event.TypedGenericEvent[*connectorsv1alpha1.ConnectorClass], capacity),
	}
}

// InstallNamespace is Options.Namespace, for Object.Scope.
func (q *Queue) InstallNamespace() string { return q.namespace }

// connectorSource and classSource feed the controllers.
func (q *Queue) connectorSource() source.Source {
	return source.Channel(q.connectors, &handler.TypedEnqueueRequestForObject[*connectorsv1alpha1.Connector]{})
}

func (q *Queue) classSource() source.Source {
	return source.Channel(q.classes, &handler.TypedEnqueueRequestForObject[*connectorsv1alpha1.ConnectorClass]{})
}

// Enqueue queues what a change of o concerns, as read from the manager's
// cache: the connector itself (nothing when it does not exist), the class
// and its connectors, or the connectors that use the Secret. It returns the
// connectors queued; ErrQueueFull when the buffer is full (those before it
// are queued).
func (q *Queue) Enqueue(ctx context.Context, o Object) ([]connectorsv1alpha1.ConnectorRef, error) {
	if q.reader == nil {
		return nil, errors.New("reconciler: the Queue is not set up with a manager (WatchOptions.Triggers)")
	}
	var list connectorsv1alpha1.ConnectorList
	switch o.Kind {
	case KindConnector:
		var c connectorsv1alpha1.Connector
		if err := q.reader.Get(ctx, client.ObjectKey{Namespace: o.Namespace, Name: o.Name}, &c); err != nil {
			if client.IgnoreNotFound(err) == nil {
				return nil, nil
			}
			return nil, fmt.Errorf("read connector %s/%s: %w", o.Namespace, o.Name, err)
		}
		list.Items = []connectorsv1alpha1.Connector{c}
	case KindConnectorClass:
		// List first: a failed list queues nothing, not half the trigger.
		if err := q.reader.List(ctx, &list, client.MatchingFields{indexClass: o.Name}); err != nil {
			return nil, fmt.Errorf("list the connectors of class %s: %w", o.Name, err)
		}
		select {
		case q.classes <- event.TypedGenericEvent[*connectorsv1alpha1.ConnectorClass]{Object: &connectorsv1alpha1.ConnectorClass{ObjectMeta: metav1.ObjectMeta{Name: o.Name}}}:
		default:
			return nil, ErrQueueFull
		}
	case KindSecret:
		opts := []client.ListOption{}
		if ns := o.Scope(q.namespace); ns != "" {
			opts = append(opts, client.InNamespace(ns), client.MatchingFields{indexSecrets: o.Name})
		}
		if err := q.reader.List(ctx, &list, opts...); err != nil {
			return nil, fmt.Errorf("list the connectors that use Secret %s/%s: %w", o.Namespace, o.Name, err)
		}
	default:
		return nil, fmt.Errorf("reconciler: triggers about %s are not handled", o.Kind)
	}
	queued := make([]connectorsv1alpha1.ConnectorRef, 0, len(list.Items))
	for i := range list.Items {
		c := &list.Items[i]
		ev := event.TypedGenericEvent[*connectorsv1alpha1.Connector]{Object: &connectorsv1alpha1.Connector{ObjectMeta: metav1.ObjectMeta{Namespace: c.Namespace, Name: c.Name}}}
		select {
		case q.connectors <- ev:
			queued = append(queued, c.Ref())
		default:
			return queued, ErrQueueFull
		}
	}
	return queued, nil
}
