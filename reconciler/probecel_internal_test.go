package reconciler

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestProbeExpressionsAreBoundedInCostAndCachedByTheirSource(t *testing.T) {
	p, err := newProbeCEL()
	if err != nil {
		t.Fatal(err)
	}
	l := "[" + strings.TrimSuffix(strings.Repeat("1,", 20), ",") + "]"
	expensive := l + ".map(a, " + l + ".map(b, " + l + ".map(c, " + l + ".map(d, " + l + ".map(e, a+b+c+d+e))))).size() > 0"
	start := time.Now()
	_, err = p.eval(t.Context(), expensive, 200, http.Header{}, nil)
	// Stopped by its cost limit, or on a loaded machine (go test -race
	// beside other packages) by its time bound first.
	if err == nil || (!strings.Contains(err.Error(), "cost limit") && !strings.Contains(err.Error(), "took longer than")) {
		t.Fatalf("err = %v, want the cost limit or the time bound", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the expensive expression ran %s before it was stopped", d)
	}

	if _, err := p.eval(t.Context(), strings.Repeat("true && ", 1000)+"true", 200, nil, nil); err == nil || !strings.Contains(err.Error(), "at most 4096 are allowed") {
		t.Errorf("err = %v, want the expression's size refused", err)
	}
	pass, err := p.eval(t.Context(), "response.body == null && response.bodyString == 'not json'", 200, nil, []byte("not json"))
	if err != nil || !pass {
		t.Errorf("a body that is not JSON: %v, %v; want body null and bodyString kept", pass, err)
	}
	before := p.programs.Len()
	for range 3 {
		if _, err := p.eval(t.Context(), "response.statusCode == 200", 200, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := p.programs.Len(); got != before+1 {
		t.Errorf("%d programs cached after one expression ran three times, want %d", got, before+1)
	}
}

func TestProbeExpressionErrorsNeverRepeatTheAnswer(t *testing.T) {
	p, err := newProbeCEL()
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"token": "SECRET-abc", "x": "SECRET-xyz"}`)
	for _, expr := range []string{
		"response.body[response.body.token] == 1",
		"timestamp(response.body.x) > timestamp('2020-01-01T00:00:00Z')",
		"response.bodyString.matches(response.body.x + '(')",
		"int(response.body.x) == 1",
	} {
		_, err := p.eval(t.Context(), expr, 200, http.Header{"X-Token": {"SECRET-hdr"}}, body)
		if err == nil {
			t.Errorf("%s: no error", expr)
			continue
		}
		if strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%s: the error %q repeats the answer", expr, err)
		}
	}
}
