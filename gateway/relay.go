package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/internal/tlsconfig"
)

// The HTTP/2 relay serves an HTTP/2 tunnel whose upstream speaks HTTP/2
// over one upstream connection of its own, frame by frame, instead of an
// HTTP/2 server, a handler goroutine per request and a pooled HTTP/2 client
// (docs/benchmarks.md: those cost three times the CPU of nginx per request).
//
// Frames are read and written with the kept framing library
// (golang.org/x/net/http2 Framer and hpack); the relay adds no parsing of
// its own. Request headers are decoded, checked with the same rules as every
// other request (forwarder.admit: host, token, connector, credential),
// stripped of the client's credentials, given the connector's and encoded
// anew for the upstream; response headers are decoded (the audit line wants
// the status) and encoded anew for the client, so each connection keeps its
// own HPACK state. DATA, WINDOW_UPDATE, PING, RST_STREAM and the flow-control
// settings pass through unchanged, so flow control is end to end and the
// relay buffers nothing beyond a frame: the client and the upstream both
// start from the protocol's default windows, and what the relay answers
// itself (refusals) it accounts for — the client's DATA of a refused stream
// is credited back to it, and the credit the client returns for the relay's
// own DATA is not passed upstream.

// relayMaxFrame bounds the frames either side may send (SETTINGS_MAX_FRAME_SIZE
// as passed on is capped at it): the Framer's read buffer grows to it.
const relayMaxFrame = 1 << 20

// relay is one HTTP/2 tunnel relayed to one upstream connection.
type relay struct {
	g     *Gateway
	f     *forwarder
	t     *tunnel
	ctx   context.Context
	up    net.Conn
	alive sync.Once

	client  *side
	upstr   *side
	version string // the upstream trust the connection was verified with

	mu        sync.Mutex // guards the fields below
	streams   map[uint32]*relayStream
	last      uint32 // the highest stream the client opened
	owed      int64  // connection credit the client will return for the relay's own DATA
	goingAway bool
	idle      *time.Timer
}

// side is one connection of the relay: its framer, its buffered writer and
// the HPACK encoder of what the relay sends it.
type side struct {
	conn     net.Conn
	r        *bufio.Reader
	fr       *http2.Framer
	wmu      sync.Mutex // guards w, the framer's writes, enc and hbuf
	w        *bufio.Writer
	enc      *hpack.Encoder
	hbuf     bytes.Buffer
	maxFrame uint32 // the peer's SETTINGS_MAX_FRAME_SIZE: the relay's HEADERS are split at it
	dirty    bool
}

func newSide(c net.Conn, maxHeaderList uint32) *side {
	s := &side{conn: c, r: bufio.NewReaderSize(c, 4<<10), w: bufio.NewWriterSize(c, 4<<10), maxFrame: 16384}
	s.fr = http2.NewFramer(s.w, s.r)
	s.fr.SetMaxReadFrameSize(relayMaxFrame)
	s.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	s.fr.MaxHeaderListSize = maxHeaderList
	s.enc = hpack.NewEncoder(&s.hbuf)
	return s
}

// flush writes what the relay buffered for the peer. The pumps call it
// once the frames already read are handled (frameBuffered): frames read
// together leave together (one TLS record, one write), and nothing waits in
// the buffer while a pump blocks reading.
func (s *side) flush() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if !s.dirty {
		return nil
	}
	s.dirty = false
	return s.w.Flush()
}

// frameBuffered reports whether r holds a whole frame already.
func frameBuffered(r *bufio.Reader) bool {
	if r.Buffered() < 9 {
		return false
	}
	h, err := r.Peek(9)
	if err != nil {
		return false
	}
	n := int(h[0])<<16 | int(h[1])<<8 | int(h[2])
	return r.Buffered() >= 9+n
}

// writeHeaders encodes fields and writes HEADERS (+ CONTINUATION) on s.
func (s *side) writeHeaders(stream uint32, endStream bool, fields []hpack.HeaderField) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.hbuf.Reset()
	for _, f := range fields {
		if err := s.enc.WriteField(f); err != nil {
			return fmt.Errorf("encode headers: %w", err)
		}
	}
	block := s.hbuf.Bytes()
	max := int(s.maxFrame)
	first := true
	for first || len(block) > 0 {
		chunk := block
		if len(chunk) > max {
			chunk = chunk[:max]
		}
		block = block[len(chunk):]
		var err error
		if first {
			err = s.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: chunk, EndStream: endStream, EndHeaders: len(block) == 0})
			first = false
		} else {
			err = s.fr.WriteContinuation(stream, len(block) == 0, chunk)
		}
		if err != nil {
			return err
		}
	}
	s.dirty = true
	return nil
}

// forwardData writes a DATA frame read from the other side as it came:
// padding too, since it counts against flow control. ended (nil: none) is
// set once an END_STREAM went to this side for the stream: a frame after it
// is dropped (dropped says so), and one that ends the stream sets it.
func (s *side) forwardData(fr *http2.DataFrame, ended *atomic.Bool) (dropped bool, err error) {
	err = s.write(func(w *http2.Framer) error {
		if ended != nil {
			if ended.Load() {
				dropped = true
				return nil
			}
			if fr.StreamEnded() {
				ended.Store(true)
			}
		}
		if fr.Flags.Has(http2.FlagDataPadded) {
			return w.WriteDataPadded(fr.StreamID, fr.StreamEnded(), fr.Data(), make([]byte, int(fr.Length)-len(fr.Data())-1))
		}
		return w.WriteData(fr.StreamID, fr.StreamEnded(), fr.Data())
	})
	return dropped, err
}

// write runs fn with the side's writer locked and marks it dirty.
func (s *side) write(fn func(fr *http2.Framer) error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.dirty = true
	return fn(s.fr)
}

// relayStream is one request of a relayed tunnel.
type relayStream struct {
	start        time.Time
	audit        *auditRecord
	c            *connectorsv1alpha1.Connector
	method       string
	own          bool // answered by the relay: never sent upstream
	status       int
	bytes        int64
	clientDone   bool
	upstreamDone bool
	reason       string
	release      func() // gives the request's fair-limit slot back
	declared     int64  // the request's content-length; -1: none
	received     int64  // request DATA bytes so far
	watch        bool   // a watch: a drain ends it cleanly
	// toClientEnded is set (under the client side's writer lock) once an
	// END_STREAM went to the client: the relay's own, when a drain ended
	// the watch, or the upstream's.
	toClientEnded atomic.Bool
}

// dialRelay opens the tunnel's upstream connection for the relay; it
// returns nil (serve the tunnel the ordinary way) when the upstream cannot
// be reached now or does not speak HTTP/2: the ordinary path then answers
// each request with the reason.
func (g *Gateway) dialRelay(ctx context.Context, f *forwarder) (net.Conn, string) {
	if !g.opts.HTTP2Relay || f.scheme != "https" {
		return nil, ""
	}
	roots, version, err := f.upstreamTrust(ctx)
	if err != nil {
		return nil, ""
	}
	u := g.transports.get(string(f.c.UID)+"|"+version, roots)
	host, _, _ := net.SplitHostPort(f.hostport)
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: g.opts.UpstreamTimeout, KeepAlive: 30 * time.Second}, Config: tlsconfig.Modern(&tls.Config{
		RootCAs: roots, ServerName: host, NextProtos: []string{"h2", "http/1.1"},
		ClientSessionCache: u.sessions,
	})}
	dctx, cancel := context.WithTimeout(ctx, g.opts.UpstreamTimeout)
	defer cancel()
	c, err := d.DialContext(dctx, "tcp", f.hostport)
	if err != nil {
		return nil, ""
	}
	if c.(*tls.Conn).ConnectionState().NegotiatedProtocol != "h2" {
		_ = c.Close()
		return nil, ""
	}
	return c, version
}

// serveRelay relays the tunnel until either connection ends.
func (g *Gateway) serveRelay(ctx context.Context, t *tunnel, client net.Conn, up net.Conn, version string, f *forwarder) {
	r := &relay{g: g, f: f, t: t, ctx: ctx, up: up, version: version, streams: map[uint32]*relayStream{}}
	maxList := uint32(g.opts.MaxHeaderBytes)
	r.client = newSide(client, maxList)
	r.upstr = newSide(up, maxList)
	defer r.close()
	if err := r.prefaces(); err != nil {
		return
	}
	g.setDrain(t, r.drain)
	r.mu.Lock()
	r.idle = time.AfterFunc(g.opts.IdleTimeout, r.closeIfIdle)
	r.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.fromUpstream()
		r.close()
	}()
	r.fromClient()
	r.close()
	<-done
	r.mu.Lock()
	r.idle.Stop()
	for id, st := range r.streams {
		if st.reason == "" {
			st.reason = "tunnel closed"
		}
		r.finishLocked(id, st)
	}
	r.mu.Unlock()
}

func (r *relay) close() {
	r.alive.Do(func() {
		r.t.close()
		_ = r.up.Close()
	})
}

// prefaces exchanges the connection prefaces: the client's SETTINGS go
// upstream as the relay's, the upstream's come back as the relay's
// server preface.
func (r *relay) prefaces() error {
	deadline := r.g.opts.Now().Add(r.g.opts.HandshakeTimeout)
	_ = r.client.conn.SetDeadline(deadline)
	_ = r.upstr.conn.SetDeadline(deadline)
	defer func() {
		_ = r.client.conn.SetDeadline(time.Time{})
		_ = r.upstr.conn.SetDeadline(time.Time{})
	}()
	magic := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(r.client.r, magic); err != nil || string(magic) != http2.ClientPreface {
		return errors.New("no HTTP/2 client preface")
	}
	fr, err := r.client.fr.ReadFrame()
	if err != nil {
		return err
	}
	cs, ok := fr.(*http2.SettingsFrame)
	if !ok || cs.IsAck() {
		return errors.New("the client's preface has no SETTINGS")
	}
	if _, err := io.WriteString(r.upstr.w, http2.ClientPreface); err != nil {
		return err
	}
	if err := r.upstr.write(func(w *http2.Framer) error { return w.WriteSettings(r.fromClientSettings(cs)...) }); err != nil {
		return err
	}
	if err := r.upstr.flush(); err != nil {
		return err
	}
	fr, err = r.upstr.fr.ReadFrame()
	if err != nil {
		return err
	}
	us, ok := fr.(*http2.SettingsFrame)
	if !ok || us.IsAck() {
		return errors.New("the upstream's preface has no SETTINGS")
	}
	if err := r.client.write(func(w *http2.Framer) error { return w.WriteSettings(r.fromUpstreamSettings(us)...) }); err != nil {
		return err
	}
	return r.client.flush()
}

// fromClientSettings are the client's settings as the relay passes them
// upstream: flow control and frame size end to end, no push, HPACK per hop.
func (r *relay) fromClientSettings(f *http2.SettingsFrame) []http2.Setting {
	out := []http2.Setting{{ID: http2.SettingEnablePush, Val: 0}}
	_ = f.ForeachSetting(func(s http2.Setting) error {
		switch s.ID {
		case http2.SettingInitialWindowSize, http2.SettingMaxHeaderListSize:
			out = append(out, s)
		case http2.SettingMaxFrameSize:
			s.Val = min(s.Val, relayMaxFrame)
			r.client.wmu.Lock()
			r.client.maxFrame = s.Val
			r.client.wmu.Unlock()
			out = append(out, s)
		case http2.SettingHeaderTableSize:
			r.client.wmu.Lock()
			r.client.enc.SetMaxDynamicTableSizeLimit(s.Val)
			r.client.wmu.Unlock()
		}
		return nil
	})
	return out
}

// fromUpstreamSettings are the upstream's settings as the relay passes them
// to the client, with at most maxStreamsPerTunnel concurrent streams.
func (r *relay) fromUpstreamSettings(f *http2.SettingsFrame) []http2.Setting {
	out := []http2.Setting{}
	streams := false
	_ = f.ForeachSetting(func(s http2.Setting) error {
		switch s.ID {
		case http2.SettingInitialWindowSize:
			out = append(out, s)
		case http2.SettingMaxHeaderListSize:
			s.Val = min(s.Val, uint32(r.g.opts.MaxHeaderBytes))
			out = append(out, s)
		case http2.SettingMaxConcurrentStreams:
			s.Val = min(s.Val, maxStreamsPerTunnel)
			streams = true
			out = append(out, s)
		case http2.SettingMaxFrameSize:
			s.Val = min(s.Val, relayMaxFrame)
			r.upstr.wmu.Lock()
			r.upstr.maxFrame = s.Val
			r.upstr.wmu.Unlock()
			out = append(out, s)
		case http2.SettingHeaderTableSize:
			r.upstr.wmu.Lock()
			r.upstr.enc.SetMaxDynamicTableSizeLimit(s.Val)
			r.upstr.wmu.Unlock()
		}
		return nil
	})
	if !streams && !f.IsAck() {
		out = append(out, http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: maxStreamsPerTunnel})
	}
	return out
}

// fromClient reads the client's frames until its connection ends.
func (r *relay) fromClient() {
	for {
		fr, err := r.client.fr.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				r.resetFromRelay(se.StreamID, se.Code, "malformed request: "+se.Code.String())
				continue
			}
			var ce http2.ConnectionError
			if errors.As(err, &ce) {
				_ = r.client.write(func(w *http2.Framer) error { return w.WriteGoAway(r.lastStream(), http2.ErrCode(ce), nil) })
				_ = r.client.flush()
			}
			return
		}
		if err := r.clientFrame(fr); err != nil {
			return
		}
		if !frameBuffered(r.client.r) {
			if r.upstr.flush() != nil || r.client.flush() != nil {
				return
			}
		}
	}
}

func (r *relay) clientFrame(fr http2.Frame) error {
	switch fr := fr.(type) {
	case *http2.MetaHeadersFrame:
		return r.clientHeaders(fr)
	case *http2.DataFrame:
		id := fr.StreamID
		r.mu.Lock()
		st := r.streams[id]
		forward := st != nil && !st.own && !st.clientDone
		if st != nil && fr.StreamEnded() {
			st.clientDone = true
		}
		r.mu.Unlock()
		if forward {
			if reason := st.bodyMismatch(fr); reason != "" {
				// The request is not what it declared: it never completes
				// upstream (a reset before its last frame).
				r.resetFromRelay(id, http2.ErrCodeProtocol, reason)
				forward = false
			}
		}
		if !forward {
			// Never sent upstream: give the client its connection credit back.
			if n := fr.Length; n > 0 {
				if err := r.client.write(func(w *http2.Framer) error { return w.WriteWindowUpdate(0, n) }); err != nil {
					return err
				}
			}
			r.maybeFinish(id)
			return nil
		}
		_, err := r.upstr.forwardData(fr, nil)
		r.maybeFinish(id)
		return err
	case *http2.WindowUpdateFrame:
		inc := fr.Increment
		if fr.StreamID == 0 {
			r.mu.Lock()
			take := min(int64(inc), r.owed)
			r.owed -= take
			r.mu.Unlock()
			inc -= uint32(take)
			if inc == 0 {
				return nil
			}
		} else if !r.forwarded(fr.StreamID) {
			return nil
		}
		return r.upstr.write(func(w *http2.Framer) error { return w.WriteWindowUpdate(fr.StreamID, inc) })
	case *http2.RSTStreamFrame:
		r.mu.Lock()
		st := r.streams[fr.StreamID]
		forward := st != nil && !st.own
		if st != nil {
			st.clientDone, st.upstreamDone = true, true
			if st.reason == "" && st.status == 0 {
				st.reason = "the client reset the stream"
			}
		}
		r.mu.Unlock()
		var err error
		if forward {
			err = r.upstr.write(func(w *http2.Framer) error { return w.WriteRSTStream(fr.StreamID, fr.ErrCode) })
		}
		r.maybeFinish(fr.StreamID)
		return err
	case *http2.SettingsFrame:
		if fr.IsAck() {
			return r.upstr.write(func(w *http2.Framer) error { return w.WriteSettingsAck() })
		}
		settings := r.fromClientSettings(fr)
		return r.upstr.write(func(w *http2.Framer) error { return w.WriteSettings(settings...) })
	case *http2.PingFrame:
		return r.upstr.write(func(w *http2.Framer) error { return w.WritePing(fr.IsAck(), fr.Data) })
	case *http2.GoAwayFrame:
		return r.upstr.write(func(w *http2.Framer) error { return w.WriteGoAway(fr.LastStreamID, fr.ErrCode, nil) })
	case *http2.PushPromiseFrame:
		return errors.New("a client sent PUSH_PROMISE")
	default:
		return nil // PRIORITY and unknown frames: nothing to relay
	}
}

func (r *relay) forwarded(id uint32) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.streams[id]
	return st != nil && !st.own
}

func (r *relay) lastStream() uint32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// hopHeaders are request headers that do not cross the relay: hop-by-hop
// ones (HTTP/2 forbids them anyway) and the forwarding ones that
// httputil.ReverseProxy drops too.
var hopHeaders = map[string]bool{
	"connection": true, "keep-alive": true, "proxy-connection": true, "transfer-encoding": true, "upgrade": true,
	"host": true, "forwarded": true, "x-forwarded-for": true, "x-forwarded-host": true, "x-forwarded-proto": true,
}

// clientHeaders handles a request (or its trailers).
func (r *relay) clientHeaders(fr *http2.MetaHeadersFrame) error {
	id := fr.StreamID
	r.mu.Lock()
	st := r.streams[id]
	switch {
	case st != nil: // trailers
		forward := !st.own && !st.clientDone
		if fr.StreamEnded() {
			st.clientDone = true
		}
		r.mu.Unlock()
		if forward {
			if err := r.upstr.writeHeaders(id, fr.StreamEnded(), requestFields(fr.RegularFields(), nil)); err != nil {
				return err
			}
		}
		r.maybeFinish(id)
		return nil
	case id <= r.last || id%2 == 0:
		r.mu.Unlock()
		return errors.New("a client reused or misnumbered a stream")
	}
	r.last = id
	active := 0
	for _, s := range r.streams {
		if !s.own {
			active++
		}
	}
	goingAway := r.goingAway
	if r.idle != nil {
		r.idle.Stop()
	}
	r.mu.Unlock()
	if goingAway || active >= maxStreamsPerTunnel {
		return r.client.write(func(w *http2.Framer) error { return w.WriteRSTStream(id, http2.ErrCodeRefusedStream) })
	}

	g := r.g
	method, path := fr.PseudoValue("method"), fr.PseudoValue("path")
	authority := fr.PseudoValue("authority")
	if authority == "" {
		for _, h := range fr.RegularFields() {
			if h.Name == "host" {
				authority = h.Value
			}
		}
	}
	urlPath, _, _ := strings.Cut(path, "?")
	audit := &auditRecord{g: g, kind: "h2", target: r.f.hostport, method: method, path: urlPath, connector: r.f.ref, identity: r.f.s.audit}
	st = &relayStream{start: g.opts.Now(), audit: audit, c: r.f.c, method: method, clientDone: fr.StreamEnded(), declared: -1, watch: watchTarget(path)}
	declared, clErr := declaredLength(fr.RegularFields())
	g.inFlight.add(1)
	g.metrics.streams.Inc()
	r.mu.Lock()
	r.streams[id] = st
	r.mu.Unlock()

	var perror *proxyError
	var after afterRefusal
	var adm *admission
	release, limited := g.acquireRequest(r.f.s)
	if release != nil {
		r.mu.Lock()
		st.release = release
		r.mu.Unlock()
	}
	switch {
	case limited != nil:
		g.metrics.limited.WithLabelValues("requests").Inc()
		perror = limited
	case fr.Truncated:
		perror = perr(http.StatusRequestHeaderFieldsTooLarge, "the request headers are larger than %d bytes", g.opts.MaxHeaderBytes)
	case fr.PseudoValue("protocol") != "":
		perror = perr(http.StatusMethodNotAllowed, "CONNECT inside a tunnel is not forwarded")
	case method == "" || path == "" && method != http.MethodConnect:
		perror = perr(http.StatusBadRequest, "the request has no :method or :path")
	case clErr != "":
		perror = perr(http.StatusBadRequest, "%s", clErr)
	case fr.StreamEnded() && declared > 0:
		perror = malformedBody(fmt.Errorf("the request declared a content-length of %d but sent no body", declared))
	default:
		adm, perror, after = r.f.admit(r.ctx, method, authority)
	}
	if perror == nil && adm.version != r.version {
		// The upstream's trust changed since this tunnel dialed it: the next
		// connection verifies it again.
		perror, after = perr(http.StatusServiceUnavailable, "the upstream's trust changed: connect again"), closeConn
	}
	if perror != nil {
		return r.refuse(id, st, perror, after, fr.StreamEnded())
	}
	r.mu.Lock()
	st.c, st.declared = adm.f.c, declared
	r.mu.Unlock()
	auth := &http.Request{Header: http.Header{}}
	adm.cred(auth)
	fields := []hpack.HeaderField{
		{Name: ":method", Value: method}, {Name: ":scheme", Value: r.f.scheme},
		{Name: ":authority", Value: r.f.hostport}, {Name: ":path", Value: path},
	}
	fields = requestFields(fr.RegularFields(), fields)
	if v := auth.Header.Get("Authorization"); v != "" {
		fields = append(fields, hpack.HeaderField{Name: "authorization", Value: v, Sensitive: true})
	}
	return r.upstr.writeHeaders(id, fr.StreamEnded(), fields)
}

// requestFields appends the client's header fields that may go upstream:
// without its credentials (Authorization, Proxy-Authorization,
// Impersonate-*) and hop-by-hop fields.
func requestFields(in, out []hpack.HeaderField) []hpack.HeaderField {
	for _, h := range in {
		switch {
		case h.Name == "authorization", h.Name == "proxy-authorization", strings.HasPrefix(h.Name, "impersonate-"), hopHeaders[h.Name]:
		case h.Name == "te" && h.Value != "trailers":
		default:
			out = append(out, h)
		}
	}
	return out
}

// refuse answers a stream itself, as writeProxyError does.
func (r *relay) refuse(id uint32, st *relayStream, e *proxyError, after afterRefusal, requestEnded bool) error {
	body := []byte(e.msg + "\n")
	fields := []hpack.HeaderField{{Name: ":status", Value: strconv.Itoa(e.status)}, {Name: "content-length", Value: strconv.Itoa(len(body))}}
	e.headers(func(name, value string) {
		fields = append(fields, hpack.HeaderField{Name: strings.ToLower(name), Value: value})
	})
	r.mu.Lock()
	st.own, st.status, st.reason, st.bytes = true, e.status, e.msg, int64(len(body))
	st.upstreamDone = true
	r.owed += int64(len(body))
	r.mu.Unlock()
	if err := r.client.writeHeaders(id, false, fields); err != nil {
		return err
	}
	err := r.client.write(func(w *http2.Framer) error {
		if err := w.WriteData(id, true, body); err != nil {
			return err
		}
		if !requestEnded {
			return w.WriteRSTStream(id, http2.ErrCodeNo) // the rest of the request body is not wanted
		}
		return nil
	})
	if !requestEnded {
		r.mu.Lock()
		st.clientDone = true
		r.mu.Unlock()
	}
	r.maybeFinish(id)
	if after != keepTunnel {
		r.goAway()
	}
	if after == endTunnel {
		r.f.closeTunnel()
	}
	return err
}

// resetFromRelay ends a stream the relay cannot carry on.
func (r *relay) resetFromRelay(id uint32, code http2.ErrCode, reason string) {
	r.mu.Lock()
	st := r.streams[id]
	forward := st != nil && !st.own
	if st != nil {
		st.clientDone, st.upstreamDone = true, true
		if st.reason == "" {
			st.reason = reason
		}
		if st.status == 0 {
			st.status = http.StatusBadRequest
		}
	}
	r.mu.Unlock()
	_ = r.client.write(func(w *http2.Framer) error { return w.WriteRSTStream(id, code) })
	if forward {
		_ = r.upstr.write(func(w *http2.Framer) error { return w.WriteRSTStream(id, http2.ErrCodeCancel) })
	}
	r.maybeFinish(id)
}

// fromUpstream reads the upstream's frames until its connection ends.
func (r *relay) fromUpstream() {
	for {
		fr, err := r.upstr.fr.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				r.upstreamReset(se.StreamID, http2.ErrCodeProtocol, "the upstream sent a malformed response")
				_ = r.upstr.write(func(w *http2.Framer) error { return w.WriteRSTStream(se.StreamID, se.Code) })
				continue
			}
			return
		}
		if err := r.upstreamFrame(fr); err != nil {
			return
		}
		if !frameBuffered(r.upstr.r) {
			if r.client.flush() != nil || r.upstr.flush() != nil {
				return
			}
		}
	}
}

func (r *relay) upstreamFrame(fr http2.Frame) error {
	switch fr := fr.(type) {
	case *http2.MetaHeadersFrame:
		id := fr.StreamID
		r.mu.Lock()
		st := r.streams[id]
		if st == nil || st.own || st.upstreamDone {
			r.mu.Unlock()
			return nil
		}
		first := st.status == 0
		if s, err := strconv.Atoi(fr.PseudoValue("status")); err == nil && (first || st.status < 200) {
			st.status = s
		}
		if fr.StreamEnded() {
			st.upstreamDone = true
		}
		r.mu.Unlock()
		if first {
			r.g.metrics.firstByte.Observe(r.g.opts.Now().Sub(st.start).Seconds())
		}
		err := r.client.writeHeaders(id, fr.StreamEnded(), fr.Fields)
		r.maybeFinish(id)
		return err
	case *http2.DataFrame:
		id := fr.StreamID
		r.mu.Lock()
		st := r.streams[id]
		if st != nil {
			st.bytes += int64(len(fr.Data()))
			if fr.StreamEnded() {
				st.upstreamDone = true
			}
		}
		r.mu.Unlock()
		var ended *atomic.Bool
		if st != nil {
			ended = &st.toClientEnded
		}
		dropped, err := r.client.forwardData(fr, ended)
		if dropped && fr.Length > 0 && err == nil {
			// The client never sees it, so never credits it: the relay
			// does, for the connection (the stream is cancelled).
			err = r.upstr.write(func(w *http2.Framer) error { return w.WriteWindowUpdate(0, fr.Length) })
		}
		r.maybeFinish(id)
		return err
	case *http2.WindowUpdateFrame:
		return r.client.write(func(w *http2.Framer) error { return w.WriteWindowUpdate(fr.StreamID, fr.Increment) })
	case *http2.RSTStreamFrame:
		r.upstreamReset(fr.StreamID, fr.ErrCode, "the upstream reset the stream: "+fr.ErrCode.String())
		return nil
	case *http2.SettingsFrame:
		if fr.IsAck() {
			return r.client.write(func(w *http2.Framer) error { return w.WriteSettingsAck() })
		}
		settings := r.fromUpstreamSettings(fr)
		return r.client.write(func(w *http2.Framer) error { return w.WriteSettings(settings...) })
	case *http2.PingFrame:
		return r.client.write(func(w *http2.Framer) error { return w.WritePing(fr.IsAck(), fr.Data) })
	case *http2.GoAwayFrame:
		r.mu.Lock()
		r.goingAway = true
		r.mu.Unlock()
		err := r.client.write(func(w *http2.Framer) error { return w.WriteGoAway(fr.LastStreamID, fr.ErrCode, nil) })
		r.closeIfIdle()
		return err
	case *http2.PushPromiseFrame:
		return errors.New("the upstream pushed although push is off")
	default:
		return nil
	}
}

func (r *relay) upstreamReset(id uint32, code http2.ErrCode, reason string) {
	r.mu.Lock()
	st := r.streams[id]
	if st == nil || st.own {
		r.mu.Unlock()
		return
	}
	st.clientDone, st.upstreamDone = true, true
	if st.status == 0 {
		st.status, st.reason = http.StatusBadGateway, reason
	}
	r.mu.Unlock()
	_ = r.client.write(func(w *http2.Framer) error { return w.WriteRSTStream(id, code) })
	r.maybeFinish(id)
}

// maybeFinish writes the audit line of a stream both sides have ended.
func (r *relay) maybeFinish(id uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.streams[id]
	if st == nil || !st.clientDone || !st.upstreamDone {
		return
	}
	r.finishLocked(id, st)
	if len(r.streams) == 0 {
		if r.goingAway {
			go r.closeIfIdle()
		} else if r.idle != nil {
			r.idle.Reset(r.g.opts.IdleTimeout)
		}
	}
}

func (r *relay) finishLocked(id uint32, st *relayStream) {
	delete(r.streams, id)
	g := r.g
	d := g.opts.Now().Sub(st.start)
	status := st.status
	if status == 0 {
		status = http.StatusBadGateway
	}
	g.metrics.request(st.c, st.method, status, "h2", d)
	st.audit.done(status, st.bytes, d, st.reason)
	if st.release != nil {
		st.release()
	}
	g.inFlight.add(-1)
	g.metrics.streams.Dec()
}

// goAway tells the client to open no more streams here (after the answer
// being written); the relay closes once the open ones end.
func (r *relay) goAway() {
	r.mu.Lock()
	if r.goingAway {
		r.mu.Unlock()
		return
	}
	r.goingAway = true
	last := r.last
	r.mu.Unlock()
	_ = r.client.write(func(w *http2.Framer) error { return w.WriteGoAway(last, http2.ErrCodeNo, nil) })
}

// drain is the relay's part of a graceful shutdown.
func (r *relay) drain() {
	r.goAway()
	r.endWatches()
	_ = r.client.flush()
	_ = r.upstr.flush()
	r.closeIfIdle()
}

// endWatches ends the watches being answered, as the ordinary path does on
// shutdown: the client sees the end of the response body (as when the API
// server ends a watch) and watches again elsewhere; the upstream's stream
// is cancelled.
func (r *relay) endWatches() {
	r.mu.Lock()
	ended := map[uint32]*relayStream{}
	for id, st := range r.streams {
		if st.watch && !st.own && st.status == http.StatusOK && st.clientDone && !st.upstreamDone {
			st.upstreamDone = true
			ended[id] = st
		}
	}
	r.mu.Unlock()
	for id, st := range ended {
		_ = r.client.write(func(w *http2.Framer) error {
			if st.toClientEnded.Swap(true) {
				return nil // the upstream's END_STREAM went first
			}
			return w.WriteData(id, true, nil)
		})
		_ = r.upstr.write(func(w *http2.Framer) error { return w.WriteRSTStream(id, http2.ErrCodeCancel) })
		r.maybeFinish(id)
	}
}

// closeIfIdle closes the relay when no stream is open (after an idle
// timeout, a GOAWAY or a drain).
func (r *relay) closeIfIdle() {
	r.mu.Lock()
	idle := len(r.streams) == 0
	r.mu.Unlock()
	if idle {
		r.goAway()
		_ = r.client.flush()
		time.AfterFunc(100*time.Millisecond, r.close) // let the last frames leave
	}
}

// declaredLength returns a request's content-length (-1 without one), or
// why it is not a valid one.
func declaredLength(fields []hpack.HeaderField) (int64, string) {
	n := int64(-1)
	for _, h := range fields {
		if h.Name != "content-length" {
			continue
		}
		v, err := strconv.ParseInt(h.Value, 10, 64)
		if err != nil || v < 0 || (n >= 0 && v != n) {
			return -1, "the request has an invalid content-length"
		}
		n = v
	}
	return n, ""
}

// bodyMismatch counts a request DATA frame and says why the body no longer
// matches the declared content-length ("" while it does). Called with the
// stream's frames in order, from the client pump only.
func (st *relayStream) bodyMismatch(fr *http2.DataFrame) string {
	if st.declared < 0 {
		return ""
	}
	st.received += int64(len(fr.Data()))
	switch {
	case st.received > st.declared:
		return fmt.Sprintf("the request body is malformed: longer than its content-length of %d", st.declared)
	case fr.StreamEnded() && st.received != st.declared:
		return fmt.Sprintf("the request body is malformed: the request declared a content-length of %d but sent %d bytes", st.declared, st.received)
	}
	return ""
}
