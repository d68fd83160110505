package tokens

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics of the package. Labels are bounded: tier and result names only.
type metrics struct {
	lookups     *prometheus.CounterVec
	review      *prometheus.HistogramVec
	redisErrors prometheus.Counter
	redisUp     prometheus.Gauge
	revocations prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "connectors_token_lookups_total",
			Help: "Token validations by tier (guard, local, redis, jwt, tokenreview) and result.",
		}, []string{"tier", "result"}),
		review: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "connectors_token_review_duration_seconds",
			Help:    "Latency of TokenReview calls to the API server.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"result"}),
		redisErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "connectors_token_redis_errors_total",
			Help: "Failed Redis commands of the shared token cache.",
		}),
		redisUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "connectors_token_redis_up",
			Help: "1 while the shared token cache in Redis is reachable.",
		}),
		revocations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "connectors_token_revocations_total",
			Help: "Pods whose tokens were revoked by this replica.",
		}),
	}
	if err := register(reg, m.lookups, m.review, m.redisErrors, m.redisUp, m.revocations); err != nil {
		return nil, err
	}
	return m, nil
}

func register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("tokens: register metrics: %w", err)
		}
	}
	return nil
}

func (m *metrics) lookup(tier, result string) { m.lookups.WithLabelValues(tier, result).Inc() }

func (m *metrics) observeReview(d time.Duration, err error) {
	res := "ok"
	if err != nil {
		res = "error"
	}
	m.review.WithLabelValues(res).Observe(d.Seconds())
}

func (m *metrics) setRedisUp(up bool) {
	if up {
		m.redisUp.Set(1)
	} else {
		m.redisUp.Set(0)
	}
}
