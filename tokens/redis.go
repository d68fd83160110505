package tokens

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/redis/go-redis/v9"
)

// RedisOptions say how to reach Redis: one URL for a single node, a
// Sentinel group or a Cluster.
//
//	redis://[user:password@]host:port[/db]                      single node
//	redis://[user:password@]h1:port,h2:port[/db]?master=NAME    Sentinel
//	redis://[user:password@]h1:port,h2:port?cluster=true        Cluster
//
// rediss:// enables TLS with the system roots.
type RedisOptions struct {
	// URL in one of the forms above.
	URL string
	// Timeout bounds every command (dial, read, write). Default 250ms.
	Timeout time.Duration
}

// NewRedisClient returns a go-redis UniversalClient for opts.
func NewRedisClient(opts RedisOptions) (redis.UniversalClient, error) {
	u, err := url.Parse(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("redis URL: %w", err)
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, fmt.Errorf("redis URL must start with redis:// or rediss://, not %q", u.Scheme+"://")
	}
	if opts.Timeout == 0 {
		opts.Timeout = 250 * time.Millisecond
	}
	uo := &redis.UniversalOptions{
		Addrs:        strings.Split(u.Host, ","),
		DialTimeout:  opts.Timeout,
		ReadTimeout:  opts.Timeout,
		WriteTimeout: opts.Timeout,
		MaxRetries:   1,
		// One dial per command: the pipeline skips Redis while it is down,
		// so retrying here would only add latency to the probing request.
		DialerRetries: 1,
	}
	if u.User != nil {
		uo.Username = u.User.Username()
		uo.Password, _ = u.User.Password()
	}
	if db := strings.Trim(u.Path, "/"); db != "" {
		if uo.DB, err = strconv.Atoi(db); err != nil {
			return nil, fmt.Errorf("redis URL database %q is not a number", db)
		}
	}
	q := u.Query()
	uo.MasterName = q.Get("master")
	uo.IsClusterMode = q.Get("cluster") == "true"
	if u.Scheme == "rediss" {
		uo.TLSConfig = tlsConfigFor(uo.Addrs[0])
	}
	return redis.NewUniversalClient(uo), nil
}

// redisEntry is the stored form of a result.
type redisEntry struct {
	Identity *Identity `json:"identity,omitempty"`
	Reject   string    `json:"reject,omitempty"`  // kind of a cached rejection
	Message  string    `json:"message,omitempty"` // its message
	Until    time.Time `json:"until"`             // the entry's expiry (Redis TTL rounds)
}

// rejectionKinds map stored rejection kinds to the package's errors.
var rejectionKinds = map[string]error{
	"malformed": ErrMalformed, "algorithm": ErrAlgorithm, "unknownKey": ErrUnknownKey,
	"signature": ErrSignature, "issuer": ErrIssuer, "audience": ErrAudience, "expired": ErrExpired,
	"notServiceAccount": ErrNotServiceAccount, "revoked": ErrRevoked, "rejected": ErrRejected,
}

func rejectionKind(err error) (string, bool) {
	for kind, sentinel := range rejectionKinds {
		if errors.Is(err, sentinel) {
			return kind, true
		}
	}
	return "", false
}

// sharedCache is the Redis tier. Every call is bounded by the client's
// timeouts; while Redis is down, only one call per retry interval tries it
// and the others skip it, so an outage costs no latency.
type sharedCache struct {
	client redis.UniversalClient
	prefix string
	secret []byte        // the shared key: MACs the values
	maxTTL time.Duration // the longest an entry lives
	log    logr.Logger
	now    func() time.Time
	onErr  func()
	onUp   func(bool)

	retry     time.Duration
	up        atomic.Bool
	mu        sync.Mutex
	lastProbe time.Time
}

func (s *sharedCache) entryKey(k cacheKey) string { return s.prefix + "t:" + k.String() }
func (s *sharedCache) podKey(uid string) string   { return s.prefix + "pod:" + uid }
func (s *sharedCache) revokedKey(uid string) string {
	return s.prefix + "revoked:" + uid
}
func (s *sharedCache) channel() string { return s.prefix + "revocations" }

// usable says whether to try Redis now.
func (s *sharedCache) usable() bool {
	if s.up.Load() {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if now := s.now(); now.Sub(s.lastProbe) >= s.retry {
		s.lastProbe = now
		return true
	}
	return false
}

// observe records the outcome of a call and logs state transitions once.
func (s *sharedCache) observe(err error) {
	if err != nil && !errors.Is(err, redis.Nil) {
		s.onErr()
		if s.up.CompareAndSwap(true, false) {
			s.mu.Lock()
			s.lastProbe = s.now()
			s.mu.Unlock()
			s.log.Error(err, "redis unreachable: serving from the local cache and the API server")
			s.onUp(false)
		}
		return
	}
	if s.up.CompareAndSwap(false, true) {
		s.log.Info("redis reachable: shared token cache in use")
		s.onUp(true)
	}
}

// get returns the cached result of a token. A value whose MAC does not
// verify (written by someone without the shared key) is a miss. A
// pod-bound identity of a revoked pod comes back as an ErrRevoked result.
func (s *sharedCache) get(ctx context.Context, k cacheKey) (result, bool) {
	payload, ok := s.getSealed(ctx, s.entryKey(k), k)
	if !ok {
		return result{}, false
	}
	var e redisEntry
	if err := json.Unmarshal(payload, &e); err != nil || !s.now().Before(e.Until) {
		return result{}, false
	}
	r := result{expires: e.Until}
	switch {
	case e.Identity != nil:
		r.id = *e.Identity
		// A replica that missed the revocation message must not serve it.
		if r.id.PodUID != "" && s.isRevoked(ctx, r.id.PodUID) {
			return result{err: fmt.Errorf("%w: pod %s", ErrRevoked, r.id.PodName), expires: e.Until}, true
		}
	case rejectionKinds[e.Reject] != nil:
		r.err = fmt.Errorf("%w: %s", rejectionKinds[e.Reject], e.Message)
	default:
		return result{}, false
	}
	return r, true
}

// getSealed reads the value at key and returns its payload if its MAC
// under k verifies (a miss when Redis is away).
func (s *sharedCache) getSealed(ctx context.Context, key string, k cacheKey) ([]byte, bool) {
	if !s.usable() {
		return nil, false
	}
	stored, err := s.client.Get(ctx, key).Bytes()
	s.observe(err)
	if err != nil {
		return nil, false
	}
	return s.open(k, stored)
}

// seal prefixes payload with HMAC(sharedKey, cacheKey || payload), so that
// an entry cannot be forged or moved to another key without the shared key.
func (s *sharedCache) seal(k cacheKey, payload []byte) []byte {
	mac := s.mac(k, payload)
	out := make([]byte, 0, hex.EncodedLen(len(mac))+1+len(payload))
	out = hex.AppendEncode(out, mac)
	out = append(out, '.')
	return append(out, payload...)
}

func (s *sharedCache) open(k cacheKey, stored []byte) ([]byte, bool) {
	macHex, payload, found := bytes.Cut(stored, []byte("."))
	if !found {
		return nil, false
	}
	got, err := hex.DecodeString(string(macHex))
	if err != nil || !hmac.Equal(got, s.mac(k, payload)) {
		return nil, false
	}
	return payload, true
}

func (s *sharedCache) mac(k cacheKey, payload []byte) []byte {
	h := hmac.New(sha256.New, s.secret)
	_, _ = h.Write(k[:])
	_, _ = h.Write(payload)
	return h.Sum(nil)
}

// put stores a result until it expires. For a pod-bound identity it also
// indexes the key under the pod and checks, in the same round trip, whether
// the pod was revoked meanwhile: then the entry is deleted again and put
// reports true.
func (s *sharedCache) put(ctx context.Context, k cacheKey, r result) (revoked bool) {
	ttl := r.expires.Sub(s.now())
	if ttl <= 0 || !s.usable() {
		return false
	}
	e := redisEntry{Until: r.expires}
	if r.err != nil {
		kind, ok := rejectionKind(r.err)
		if !ok {
			return false
		}
		e.Reject, e.Message = kind, r.err.Error()
	} else {
		e.Identity = &r.id
	}
	payload, err := json.Marshal(e)
	if err != nil {
		return false
	}
	// Plain pipelines: in Cluster mode the keys live in different slots.
	pipe := s.client.Pipeline()
	pipe.Set(ctx, s.entryKey(k), s.seal(k, payload), ttl)
	var revokedCmd *redis.IntCmd
	if r.err == nil && r.id.PodUID != "" {
		pipe.SAdd(ctx, s.podKey(r.id.PodUID), k.String())
		// Every entry lives at most maxTTL, so this outlives all of them.
		pipe.Expire(ctx, s.podKey(r.id.PodUID), s.maxTTL+time.Minute)
		revokedCmd = pipe.Exists(ctx, s.revokedKey(r.id.PodUID))
	}
	_, err = pipe.Exec(ctx)
	s.observe(err)
	if err == nil && revokedCmd != nil && revokedCmd.Val() > 0 {
		s.observe(s.client.Del(ctx, s.entryKey(k)).Err())
		return true
	}
	return false
}

// isRevoked asks whether any replica revoked the pod.
func (s *sharedCache) isRevoked(ctx context.Context, podUID string) bool {
	if !s.usable() {
		return false
	}
	n, err := s.client.Exists(ctx, s.revokedKey(podUID)).Result()
	s.observe(err)
	return err == nil && n > 0
}

// revoke marks the pod revoked for `remember`, deletes the entries of its
// tokens and tells the other replicas.
func (s *sharedCache) revoke(ctx context.Context, podUID string, remember time.Duration) error {
	members, err := s.client.SMembers(ctx, s.podKey(podUID)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		s.observe(err)
		return fmt.Errorf("redis: read the tokens of pod %s: %w", podUID, err)
	}
	pipe := s.client.Pipeline()
	pipe.Set(ctx, s.revokedKey(podUID), "1", remember)
	for _, m := range members {
		pipe.Del(ctx, s.prefix+"t:"+m)
	}
	pipe.Del(ctx, s.podKey(podUID))
	pipe.Publish(ctx, s.channel(), podUID)
	_, err = pipe.Exec(ctx)
	s.observe(err)
	if err != nil {
		return fmt.Errorf("redis: revoke pod %s: %w", podUID, err)
	}
	return nil
}
