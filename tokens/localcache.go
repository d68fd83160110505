package tokens

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// cacheKey is HMAC-SHA256(sharedKey, token): what caches store instead of
// the token.
type cacheKey [sha256.Size]byte

func (k cacheKey) String() string { return hex.EncodeToString(k[:]) }

// keyer computes cache keys. hmac.New is not free, so the keyed hash state
// is pooled.
type keyer struct {
	pool sync.Pool
}

func newKeyer(secret []byte) *keyer {
	secret = append([]byte(nil), secret...)
	return &keyer{pool: sync.Pool{New: func() any { return hmac.New(sha256.New, secret) }}}
}

func (k *keyer) key(t Token) cacheKey {
	h := k.pool.Get().(hash.Hash)
	h.Reset()
	_, _ = h.Write([]byte(t))
	var out cacheKey
	h.Sum(out[:0])
	k.pool.Put(h)
	return out
}

// result is a cached validation outcome: an identity, or the error of a
// definitive rejection.
type result struct {
	id      Identity
	err     error
	expires time.Time
}

// localCache is the in-process LRU, with an index from pod UID to the keys
// of tokens bound to that pod, and a bounded set of recently revoked pods.
type localCache struct {
	entries *lru.Cache[cacheKey, result]

	mu    sync.Mutex
	byPod map[string]map[cacheKey]struct{}

	revoked *lru.Cache[string, time.Time] // pod UID -> until
}

func newLocalCache(size int) *localCache {
	c := &localCache{byPod: make(map[string]map[cacheKey]struct{})}
	// lru.New* only fail for a non-positive size, which the options exclude.
	c.entries, _ = lru.NewWithEvict(size, c.onEvict)
	c.revoked, _ = lru.New[string, time.Time](size)
	return c
}

func (c *localCache) onEvict(k cacheKey, r result) {
	if r.id.PodUID == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if keys := c.byPod[r.id.PodUID]; keys != nil {
		delete(keys, k)
		if len(keys) == 0 {
			delete(c.byPod, r.id.PodUID)
		}
	}
}

// get returns a live entry. Expired entries and entries of revoked pods are
// dropped.
func (c *localCache) get(k cacheKey, now time.Time) (result, bool) {
	r, ok := c.entries.Get(k)
	if !ok {
		return result{}, false
	}
	if !now.Before(r.expires) || (r.id.PodUID != "" && c.isRevoked(r.id.PodUID, now)) {
		c.entries.Remove(k)
		return result{}, false
	}
	return r, true
}

func (c *localCache) put(k cacheKey, r result) {
	if r.id.PodUID != "" {
		c.mu.Lock()
		keys := c.byPod[r.id.PodUID]
		if keys == nil {
			keys = make(map[cacheKey]struct{})
			c.byPod[r.id.PodUID] = keys
		}
		keys[k] = struct{}{}
		c.mu.Unlock()
	}
	c.entries.Add(k, r)
}

// revoke drops every entry of the pod and remembers the pod until `until`.
func (c *localCache) revoke(podUID string, until time.Time) {
	c.revoked.Add(podUID, until)
	c.mu.Lock()
	keys := c.byPod[podUID]
	delete(c.byPod, podUID)
	c.mu.Unlock()
	for k := range keys {
		c.entries.Remove(k)
	}
}

func (c *localCache) isRevoked(podUID string, now time.Time) bool {
	until, ok := c.revoked.Get(podUID)
	return ok && now.Before(until)
}

// purge drops every entry (the revoked set stays).
func (c *localCache) purge() { c.entries.Purge() }
