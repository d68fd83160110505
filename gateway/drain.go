package gateway

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
)

// counter counts what runs (requests, tunnel goroutines) and lets shutdown
// wait until nothing does, without polling.
type counter struct {
	mu   sync.Mutex
	n    int64
	zero chan struct{} // closed when n drops to 0; nil while nobody waits
}

func (c *counter) add(d int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n += d
	if c.n == 0 && c.zero != nil {
		close(c.zero)
		c.zero = nil
	}
}

// waitZero returns true once the count is zero, false if ctx ends first.
func (c *counter) waitZero(ctx context.Context) bool {
	c.mu.Lock()
	if c.n == 0 {
		c.mu.Unlock()
		return true
	}
	if c.zero == nil {
		c.zero = make(chan struct{})
	}
	zero := c.zero
	c.mu.Unlock()
	select {
	case <-zero:
		return true
	case <-ctx.Done():
		return false
	}
}

// watchBodies are the upstream bodies of the watches being forwarded: a
// shutting-down gateway ends them cleanly (the client sees the end of the
// watch, as when the API server ends one, and watches again through
// another replica) instead of cutting their connections at the deadline.
type watchBodies struct {
	mu     sync.Mutex
	bodies map[*watchBody]struct{}
	ended  bool
}

// watchBody is an upstream watch body that reads as ended (io.EOF) once
// the gateway ends its watches.
type watchBody struct {
	io.ReadCloser
	set   *watchBodies
	ended atomic.Bool
}

// track wraps an upstream watch body; once the watches were ended, the
// body reads as ended at once.
func (s *watchBodies) track(rc io.ReadCloser) io.ReadCloser {
	b := &watchBody{ReadCloser: rc, set: s}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		b.ended.Store(true)
		_ = rc.Close()
		return b
	}
	if s.bodies == nil {
		s.bodies = map[*watchBody]struct{}{}
	}
	s.bodies[b] = struct{}{}
	return b
}

// endAll ends every watch, and those that start later.
func (s *watchBodies) endAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ended = true
	for b := range s.bodies {
		b.ended.Store(true)
		_ = b.ReadCloser.Close() // a blocked Read returns now
	}
}

func (b *watchBody) Read(p []byte) (int, error) {
	if b.ended.Load() {
		return 0, io.EOF
	}
	n, err := b.ReadCloser.Read(p)
	if err != nil && b.ended.Load() {
		return n, io.EOF
	}
	return n, err
}

func (b *watchBody) Close() error {
	b.set.mu.Lock()
	delete(b.set.bodies, b)
	b.set.mu.Unlock()
	return b.ReadCloser.Close()
}

// isWatch reports whether r asks for a watch: ?watch=true|1 or a path under
// /watch/ (the API server's old form).
func isWatch(r *http.Request) bool { return watchRequest(r.URL.Path, r.URL.RawQuery) }

// watchTarget is isWatch for a request target (path and query) as it came.
func watchTarget(target string) bool {
	path, query, _ := strings.Cut(target, "?")
	return watchRequest(path, query)
}

// watchRequest parses the query only when it may name watch: it runs for
// every request.
func watchRequest(path, rawQuery string) bool {
	if strings.Contains(path, "/watch/") {
		return true
	}
	if !strings.Contains(rawQuery, "watch") {
		return false
	}
	q, _ := url.ParseQuery(rawQuery) // as URL.Query: malformed pairs dropped
	v := q.Get("watch")
	return v == "true" || v == "1"
}
