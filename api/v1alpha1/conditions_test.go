package v1alpha1_test

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
)

func cond(t string, s metav1.ConditionStatus, reason string) connectorsv1alpha1.Condition {
	return connectorsv1alpha1.Condition{Type: t, Status: s, Reason: reason, Message: reason + " message"}
}

func allTrue() []connectorsv1alpha1.Condition {
	var out []connectorsv1alpha1.Condition
	for _, t := range connectorsv1alpha1.ConnectorConditionTypes() {
		out = append(out, cond(t, metav1.ConditionTrue, ""))
	}
	return out
}

func with(conds []connectorsv1alpha1.Condition, c connectorsv1alpha1.Condition) []connectorsv1alpha1.Condition {
	out := append([]connectorsv1alpha1.Condition(nil), conds...)
	for i := range out {
		if out[i].Type == c.Type {
			out[i] = c
			return out
		}
	}
	return append(out, c)
}

func without(conds []connectorsv1alpha1.Condition, t string) []connectorsv1alpha1.Condition {
	var out []connectorsv1alpha1.Condition
	for _, c := range conds {
		if c.Type != t {
			out = append(out, c)
		}
	}
	return out
}

func TestAggregateReady(t *testing.T) {
	tests := []struct {
		name       string
		conds      []connectorsv1alpha1.Condition
		wantStatus metav1.ConditionStatus
		wantReason string
	}{
		{
			name:       "all conditions True make Ready True",
			conds:      allTrue(),
			wantStatus: metav1.ConditionTrue,
		},
		{
			name:       "one False condition makes Ready False with its reason",
			conds:      with(allTrue(), cond(connectorsv1alpha1.ConditionAuthReady, metav1.ConditionFalse, connectorsv1alpha1.ReasonAuthenticationFailed)),
			wantStatus: metav1.ConditionFalse,
			wantReason: connectorsv1alpha1.ReasonAuthenticationFailed,
		},
		{
			name: "False wins over an earlier Unknown",
			conds: with(with(allTrue(),
				cond(connectorsv1alpha1.ConditionSecretReady, metav1.ConditionUnknown, "Checking")),
				cond(connectorsv1alpha1.ConditionProxyServiceReady, metav1.ConditionFalse, connectorsv1alpha1.ReasonProxyServiceNotFound)),
			wantStatus: metav1.ConditionFalse,
			wantReason: connectorsv1alpha1.ReasonProxyServiceNotFound,
		},
		{
			name: "the first False condition in evaluation order gives the reason",
			conds: with(with(allTrue(),
				cond(connectorsv1alpha1.ConditionProxyServiceReady, metav1.ConditionFalse, connectorsv1alpha1.ReasonProxyServiceNotFound)),
				cond(connectorsv1alpha1.ConditionConnectorClassReady, metav1.ConditionFalse, connectorsv1alpha1.ReasonConnectorClassNotFound)),
			wantStatus: metav1.ConditionFalse,
			wantReason: connectorsv1alpha1.ReasonConnectorClassNotFound,
		},
		{
			name:       "an Unknown condition and no False one make Ready Unknown",
			conds:      with(allTrue(), cond(connectorsv1alpha1.ConditionLivenessReady, metav1.ConditionUnknown, "Probing")),
			wantStatus: metav1.ConditionUnknown,
			wantReason: "Probing",
		},
		{
			name:       "a missing condition makes Ready Unknown",
			conds:      without(allTrue(), connectorsv1alpha1.ConditionSecretReady),
			wantStatus: metav1.ConditionUnknown,
			wantReason: "Pending",
		},
		{
			name:       "no conditions at all make Ready Unknown",
			wantStatus: metav1.ConditionUnknown,
			wantReason: "Pending",
		},
		{
			name: "True conditions with informational reasons still make Ready True",
			conds: with(with(allTrue(),
				cond(connectorsv1alpha1.ConditionSecretReady, metav1.ConditionTrue, connectorsv1alpha1.ReasonSecretOptional)),
				cond(connectorsv1alpha1.ConditionProxyServiceReady, metav1.ConditionTrue, connectorsv1alpha1.ReasonNonProxy)),
			wantStatus: metav1.ConditionTrue,
		},
		{
			name:       "a stale Ready condition in the list is ignored",
			conds:      with(allTrue(), cond(connectorsv1alpha1.ConditionReady, metav1.ConditionFalse, "Old")),
			wantStatus: metav1.ConditionTrue,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := connectorsv1alpha1.AggregateReady(tt.conds, connectorsv1alpha1.ConnectorConditionTypes())
			if got.Type != connectorsv1alpha1.ConditionReady || got.Status != tt.wantStatus || got.Reason != tt.wantReason {
				t.Errorf("AggregateReady = %s/%s/%s, want Ready/%s/%s", got.Type, got.Status, got.Reason, tt.wantStatus, tt.wantReason)
			}
			if got.Status != metav1.ConditionTrue && got.Message == "" {
				t.Error("a Ready that is not True must carry a message for humans")
			}
		})
	}
}

func TestSetCondition(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	t1 := metav1.NewTime(t0.Add(time.Minute))
	tests := []struct {
		name        string
		start       []connectorsv1alpha1.Condition
		set         connectorsv1alpha1.Condition
		wantChanged bool
		wantTime    metav1.Time
	}{
		{
			name:        "a new condition is added with the transition time now",
			set:         cond("A", metav1.ConditionTrue, "R"),
			wantChanged: true,
			wantTime:    t1,
		},
		{
			name:        "the same status keeps the old transition time",
			start:       []connectorsv1alpha1.Condition{{Type: "A", Status: metav1.ConditionTrue, Reason: "R", Message: "R message", LastTransitionTime: &t0}},
			set:         cond("A", metav1.ConditionTrue, "R"),
			wantChanged: false,
			wantTime:    t0,
		},
		{
			name:        "a new message with the same status is a change but keeps the transition time",
			start:       []connectorsv1alpha1.Condition{{Type: "A", Status: metav1.ConditionFalse, Reason: "R", Message: "old", LastTransitionTime: &t0}},
			set:         cond("A", metav1.ConditionFalse, "R"),
			wantChanged: true,
			wantTime:    t0,
		},
		{
			name:        "a status change moves the transition time",
			start:       []connectorsv1alpha1.Condition{{Type: "A", Status: metav1.ConditionFalse, Reason: "R", LastTransitionTime: &t0}},
			set:         cond("A", metav1.ConditionTrue, "R"),
			wantChanged: true,
			wantTime:    t1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conds := append([]connectorsv1alpha1.Condition(nil), tt.start...)
			changed := connectorsv1alpha1.SetCondition(&conds, tt.set, t1)
			if changed != tt.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tt.wantChanged)
			}
			got := connectorsv1alpha1.FindCondition(conds, tt.set.Type)
			if got == nil || got.Status != tt.set.Status || got.Message != tt.set.Message {
				t.Fatalf("condition after set = %+v, want %+v", got, tt.set)
			}
			if got.LastTransitionTime == nil || !got.LastTransitionTime.Equal(&tt.wantTime) {
				t.Errorf("lastTransitionTime = %v, want %v", got.LastTransitionTime, tt.wantTime)
			}
			if len(conds) != 1 {
				t.Errorf("got %d conditions, want 1", len(conds))
			}
		})
	}
}
