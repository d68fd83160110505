package gateway

import (
	"bufio"
	"net"
	"net/http"
	"sync/atomic"
)

// statusRecorder notes the status and bytes of a response and passes
// Flush and Hijack through (streaming, upgrades).
type statusRecorder struct {
	http.ResponseWriter
	status   int
	bytes    int64
	wrote    bool
	hijacked atomic.Int64 // bytes written to the client after an upgrade
}

func (s *statusRecorder) WriteHeader(code int) {
	// Informational answers (100 Continue, 103 Early Hints) come before the
	// final status; 101 is final for an upgrade.
	if !s.wrote && (code >= 200 || code == http.StatusSwitchingProtocols) {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wrote = true
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach Flush and deadlines.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack passes the connection of an upgraded stream to
// httputil.ReverseProxy, which hijacks only to relay a 101 Switching
// Protocols response (it writes that response itself, never through
// WriteHeader), and counts the bytes relayed to the client.
func (s *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(s.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if !s.wrote {
		s.status, s.wrote = http.StatusSwitchingProtocols, true
	}
	return &countingConn{Conn: conn, n: &s.hijacked}, brw, nil
}

// written is the number of body bytes sent to the client.
func (s *statusRecorder) written() int64 { return s.bytes + s.hijacked.Load() }

// countingConn counts the bytes written to a hijacked connection.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.n.Add(int64(n))
	return n, err
}
