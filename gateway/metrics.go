package gateway

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
)

// metrics of the gateway. Labels are bounded: connector (namespace/name),
// method class, code class, protocol — never user, token or IP.
type metrics struct {
	requests   *prometheus.CounterVec
	durations  *prometheus.HistogramVec
	tunnels    prometheus.Gauge
	streams    prometheus.Gauge
	handshakes *prometheus.HistogramVec
	firstByte  prometheus.Histogram
	auths      *prometheus.CounterVec
	limited    *prometheus.CounterVec // refusals by a fair limit: tunnels or requests
	// secretWatches counts the single-Secret watches running, secretReads
	// the Secrets read from the API server instead (watch not synced yet,
	// or over the limit).
	secretWatches prometheus.Gauge
	secretReads   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "connectors_gateway_requests_total",
			Help: "Requests forwarded, by connector, method class (read, write, other), code class and protocol (h1, h2, ws, spdy, http).",
		}, []string{"connector", "method", "code", "protocol"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "connectors_gateway_request_duration_seconds",
			Help:    "Duration of forwarded requests (streams included), by connector and protocol.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"connector", "protocol"}),
		tunnels: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "connectors_gateway_tunnels_in_flight", Help: "Open CONNECT tunnels.",
		}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "connectors_gateway_streams_in_flight", Help: "Requests and streams being forwarded.",
		}),
		handshakes: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "connectors_gateway_tls_handshake_seconds",
			Help:    "TLS handshakes with clients inside tunnels, by result.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"result"}),
		firstByte: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "connectors_gateway_upstream_first_byte_seconds",
			Help:    "Time from a request's arrival to the upstream's response headers.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		auths: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "connectors_gateway_auth_results_total",
			Help: "Proxy authentication results (missing, malformed, invalid, policy, unavailable, valid; tls-name: a TLS reverse-proxy handshake for a name that is not the gateway's).",
		}, []string{"result"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "connectors_gateway_limited_total",
			Help: "Tunnels and requests refused with 503 by a limit (of the replica, a connector, a pod or a namespace; the audit line names which).",
		}, []string{"kind"}),
		secretWatches: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "connectors_gateway_secret_watches", Help: "Secrets watched one by one because connectors reference them.",
		}),
		secretReads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "connectors_gateway_secret_api_reads_total",
			Help: "Secrets read from the API server on use because their watch has not synced yet or the watch limit (--cache-size) is reached.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.durations, m.tunnels, m.streams, m.handshakes, m.firstByte, m.auths, m.limited, m.secretWatches, m.secretReads} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("gateway: register metrics: %w", err)
			}
		}
	}
	return m, nil
}

func (m *metrics) auth(result string) { m.auths.WithLabelValues(result).Inc() }

func (m *metrics) request(c *connectorsv1alpha1.Connector, method string, status int, protocol string, d time.Duration) {
	conn := c.Namespace + "/" + c.Name
	m.requests.WithLabelValues(conn, methodClass(method), strconv.Itoa(status/100)+"xx", protocol).Inc()
	m.durations.WithLabelValues(conn, protocol).Observe(d.Seconds())
}

func methodClass(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return "read"
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return "write"
	default:
		return "other"
	}
}
