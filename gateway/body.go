package gateway

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"sync"
)

// bodyPrefetch is how much of a request body the gateway reads before it
// forwards the request. A body that ends within it (nearly every API
// request) goes upstream whole, with its length; one that is malformed
// within it (a bad chunk size, a bare LF, shorter than its Content-Length)
// is answered 400 and nothing is sent upstream. A longer body streams: if
// it turns out malformed later, the upstream request is aborted (the
// upstream never gets a complete request) and the client gets 400.
const bodyPrefetch = 64 << 10

// clientBody reads a request body for the upstream and remembers whether
// reading the client's side failed, so that the failure is answered as the
// client's (400), not the upstream's (502).
type clientBody struct {
	r   io.Reader
	c   io.Closer
	mu  sync.Mutex
	err error
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		b.mu.Lock()
		b.err = err
		b.mu.Unlock()
	}
	return n, err
}

func (b *clientBody) Close() error { return b.c.Close() }

// failed returns the client-side read error, if there was one.
func (b *clientBody) failed() error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// prefetchBody reads up to bodyPrefetch bytes of r's body as described
// there and replaces r.Body with what goes upstream. It returns the body's
// error tracker (nil when there is no body) or the refusal of a malformed
// body.
func prefetchBody(r *http.Request) (*clientBody, *proxyError) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	limit := int64(bodyPrefetch)
	if r.ContentLength >= 0 && r.ContentLength < limit {
		limit = r.ContentLength
	}
	buf := bytes.NewBuffer(make([]byte, 0, min(limit+1, bodyPrefetch)))
	n, err := io.Copy(buf, io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, malformedBody(err)
	}
	if n <= limit {
		// The whole body (a declared length was read in full: a short
		// one is an error above): it goes upstream with its length.
		_ = r.Body.Close()
		r.TransferEncoding = nil
		r.ContentLength = n
		r.Header.Del("Transfer-Encoding")
		if n == 0 {
			r.Body = http.NoBody
			return nil, nil
		}
		r.Body = io.NopCloser(bytes.NewReader(buf.Bytes()))
		return nil, nil
	}
	b := &clientBody{r: io.MultiReader(bytes.NewReader(buf.Bytes()), r.Body), c: r.Body}
	r.Body = b
	return b, nil
}

// malformedBody is the answer to a request body that cannot be read: a
// framing error of the client's, never the upstream's.
func malformedBody(err error) *proxyError {
	return perr(http.StatusBadRequest, "the request body is malformed: %s", err.Error())
}
