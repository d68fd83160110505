package tokens

import (
	"context"
	"encoding/json"
	"time"
)

// Authorization decisions in the Redis tier, next to the tokens: one
// replica's SubjectAccessReview serves the others until the decision's TTL
// ends. Values are sealed with the shared key like token entries, so a
// writer without it cannot plant an "allowed".

// decisionEntry is the stored form of a decision.
type decisionEntry struct {
	Allowed bool      `json:"allowed"`
	Message string    `json:"message,omitempty"` // a denial's reason
	Until   time.Time `json:"until"`
}

func (s *sharedCache) decisionKey(k cacheKey) string { return s.prefix + "a:" + k.String() }

// getDecision returns a stored decision that has not expired.
func (s *sharedCache) getDecision(ctx context.Context, k cacheKey) (decisionEntry, bool) {
	payload, ok := s.getSealed(ctx, s.decisionKey(k), k)
	if !ok {
		return decisionEntry{}, false
	}
	var e decisionEntry
	if err := json.Unmarshal(payload, &e); err != nil || !s.now().Before(e.Until) {
		return decisionEntry{}, false
	}
	return e, true
}

// putDecision stores a decision until e.Until.
func (s *sharedCache) putDecision(ctx context.Context, k cacheKey, e decisionEntry) {
	ttl := e.Until.Sub(s.now())
	if ttl <= 0 || !s.usable() {
		return
	}
	payload, err := json.Marshal(e)
	if err != nil {
		return
	}
	s.observe(s.client.Set(ctx, s.decisionKey(k), s.seal(k, payload), ttl).Err())
}
