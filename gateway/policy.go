package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/internal/policy"
	"github.com/connectors-io/connectors/tokens"
)

// The Rego policies of a class (package internal/policy): the reverse
// proxy's authExtractor finds the pod token in a request, an auth type's
// generator computes the credential to inject from the Secret's data.

// extractToken runs the class's authExtractor on a reverse-proxied request:
// "" when the connector, its class or the extractor is missing or finds
// nothing (the Authorization header is read then).
func (g *Gateway) extractToken(ctx context.Context, r *http.Request, ref connectorsv1alpha1.ConnectorRef) (tokens.Token, *proxyError) {
	c, err := g.state.connector(ctx, ref.Namespace, ref.Name)
	if err != nil {
		return "", nil
	}
	class := g.state.class(ctx, c)
	if class == nil || class.Spec.Proxy == nil || class.Spec.Proxy.AuthExtractor == nil || strings.TrimSpace(class.Spec.Proxy.AuthExtractor.Rego) == "" {
		return "", nil
	}
	in, perror := policyRequest(r)
	if perror != nil {
		return "", perror
	}
	tok, err := g.policy.Token(ctx, class.Spec.Proxy.AuthExtractor.Rego, in)
	if err != nil {
		g.metrics.auth("policy")
		return "", perr(http.StatusBadGateway, "the authExtractor of ConnectorClass %s failed: %s", class.Name, err.Error())
	}
	return tokens.Token(tok), nil
}

// generator is an auth type's Rego generator with the Secret's data.
type generator struct {
	class, authType, module string
	data                    map[string]string
}

// inject evaluates the generator on the client's request r and returns what
// sets the credential on the upstream request. streaming says that r's body
// was too long to be read ahead (prefetchBody): it cannot take a credential.
func (gen *generator) inject(ctx context.Context, e *policy.Engine, r *http.Request, streaming bool) (func(*http.Request), *proxyError) {
	in, perror := policyRequest(r)
	if perror != nil {
		return nil, perror
	}
	inj, err := e.Generate(ctx, gen.module, gen.data, in)
	if err != nil {
		return nil, perr(http.StatusBadGateway, "the generator of auth type %s of ConnectorClass %s failed: %s", gen.authType, gen.class, err.Error())
	}
	switch inj.Position {
	case "header":
		return func(out *http.Request) {
			for k, v := range inj.Auth {
				out.Header.Set(k, v)
			}
		}, nil
	case "query":
		return func(out *http.Request) {
			q := out.URL.Query()
			for k, v := range inj.Auth {
				q.Set(k, v)
			}
			out.URL.RawQuery = q.Encode()
		}, nil
	case "body":
		if streaming || isUpgrade(r) {
			return nil, perr(http.StatusRequestEntityTooLarge, "the connector's credential goes into the request body, which must be at most %d bytes", bodyPrefetch)
		}
		var body []byte
		if r.Body != nil && r.Body != http.NoBody {
			// Read ahead by prefetchBody: in memory.
			b, err := io.ReadAll(r.Body)
			if err != nil {
				return nil, malformedBody(err)
			}
			body = b
		}
		merged, perror := mergeBody(r.Header.Get("Content-Type"), inj.ContentType, body, inj.Auth)
		if perror != nil {
			return nil, perror
		}
		return func(out *http.Request) {
			out.Body = io.NopCloser(bytes.NewReader(merged))
			out.ContentLength = int64(len(merged))
			out.Header.Set("Content-Length", strconv.Itoa(len(merged)))
			if ct := inj.ContentType; ct != "" {
				out.Header.Set("Content-Type", ct)
			}
			out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(merged)), nil }
		}, nil
	}
	// policy.Generate checks the position: cannot happen.
	return nil, perr(http.StatusBadGateway, "the generator of auth type %s of ConnectorClass %s gave no position", gen.authType, gen.class)
}

// mergeBody adds the generated keys to a JSON object or a form body (an
// empty body becomes one); the content type is the generator's, else the
// request's, else JSON.
func mergeBody(requestType, generatedType string, body []byte, auth map[string]string) ([]byte, *proxyError) {
	ct := generatedType
	if ct == "" {
		ct = requestType
	}
	mt, _, _ := mime.ParseMediaType(ct)
	switch {
	case mt == "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, perr(http.StatusBadRequest, "the request body is not a form, so the connector's credential cannot be added to it")
		}
		for k, v := range auth {
			form.Set(k, v)
		}
		return []byte(form.Encode()), nil
	case mt == "" || mt == "application/json" || strings.HasSuffix(mt, "+json"):
		obj := map[string]any{}
		if len(bytes.TrimSpace(body)) > 0 {
			if err := json.Unmarshal(body, &obj); err != nil {
				return nil, perr(http.StatusBadRequest, "the request body is not a JSON object, so the connector's credential cannot be added to it")
			}
		}
		for k, v := range auth {
			obj[k] = v
		}
		b, err := json.Marshal(obj)
		if err != nil {
			return nil, perr(http.StatusBadRequest, "the request body cannot be encoded again: %s", err.Error())
		}
		return b, nil
	}
	return nil, perr(http.StatusBadRequest, "the connector's credential goes into the body, which must be JSON or a form, not %s", mt)
}

// policyRequest is the input.request of a policy: canonical headers, the
// query, method, path, host and the body parsed as JSON (when it is JSON
// and was read in full: it is read here only when short).
func policyRequest(r *http.Request) (policy.Request, *proxyError) {
	in := policy.Request{Headers: r.Header, Query: r.URL.Query(), Method: r.Method, Path: r.URL.Path, Host: r.Host}
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength < 0 || r.ContentLength > bodyPrefetch {
		return in, nil
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		return in, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, r.ContentLength+1))
	_ = r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return in, malformedBody(err)
	}
	var v any
	if json.Unmarshal(body, &v) == nil {
		in.Body = v
	}
	return in, nil
}
