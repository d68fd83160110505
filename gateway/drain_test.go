package gateway

import "testing"

func TestAWatchIsToldByItsQueryOrItsOldPathAlone(t *testing.T) {
	for target, want := range map[string]bool{
		"/api/v1/namespaces/ns/pods?watch=1":                    true,
		"/api/v1/namespaces/ns/pods?labelSelector=a&watch=true": true,
		"/api/v1/watch/namespaces/ns/pods":                      true,
		"/api/v1/namespaces/ns/pods?watch=0":                    false,
		"/api/v1/namespaces/ns/pods?watch=false":                false,
		"/api/v1/namespaces/ns/pods?allowWatchBookmarks=true":   false,
		"/api/v1/namespaces/ns/pods?bad=%zz&watch=1":            true, // a malformed pair is dropped, as URL.Query does
		"/api/v1/namespaces/ns/pods":                            false,
		"/api/v1/namespaces/ns/pods/watcher":                    false,
	} {
		if got := watchTarget(target); got != want {
			t.Errorf("%s: watch %t, want %t", target, got, want)
		}
	}
}
