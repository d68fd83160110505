package control

import "testing"

func TestTheCallerLimiterEvictsTheLeastRecentlyUsedCaller(t *testing.T) {
	l, err := newCallerLimiter(0, 1, 2) // one request per caller, two callers remembered
	if err != nil {
		t.Fatal(err)
	}
	if !l.allow("a") || !l.allow("b") {
		t.Fatal("a first request is refused")
	}
	if l.allow("a") {
		t.Fatal("a second request of a is allowed")
	}
	// a was just used, so c evicts b, and a stays limited.
	if !l.allow("c") {
		t.Fatal("the first request of c is refused")
	}
	if l.allow("a") {
		t.Error("a busy caller was evicted by a new one (its limit reset)")
	}
	if !l.allow("b") {
		t.Error("the idle caller b was not the one evicted")
	}
}
