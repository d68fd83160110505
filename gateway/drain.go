package gateway

import (
	"context"
	"sync"
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
