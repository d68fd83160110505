package httplog_test

import (
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"

	"github.com/connectors-io/connectors/internal/httplog"
)

func TestPanicsAreErrorsAcceptErrorsInfoAndClientTroubleV1(t *testing.T) {
	// funcr writes errors without a level, info lines with theirs.
	for _, tt := range []struct{ line, want string }{
		{"http: panic serving 127.0.0.1:1: boom\ngoroutine 1 [running]:\nmain.f()", `"msg"="recovered a panic of a handler" "error"="http: panic serving 127.0.0.1:1: boom" "stack"="goroutine 1 [running]:\nmain.f()"`},
		{"http2: panic serving 127.0.0.1:1: boom\nstack", `"msg"="recovered a panic of a handler" "error"="http2: panic serving 127.0.0.1:1: boom"`},
		{"http: Accept error: too many open files; retrying in 5ms", `"level"=0 "msg"="cannot accept a connection, retrying"`},
		{"http: TLS handshake error from 127.0.0.1:1: EOF", `"level"=1 "msg"="HTTP server error" "error"="http: TLS handshake error from 127.0.0.1:1: EOF"`},
		{"http: superfluous response.WriteHeader call from main.handler (main.go:12)", `"level"=1 "msg"="HTTP server error"`},
		{"http2: server connection error from 127.0.0.1:1: connection error: PROTOCOL_ERROR", `"level"=1 "msg"="HTTP server error"`},
		{"httputil: ReverseProxy read error during body copy: unexpected EOF", `"level"=1 "msg"="HTTP server error"`},
	} {
		var got []string
		logger := funcr.New(func(prefix, args string) { got = append(got, args) }, funcr.Options{Verbosity: 1})
		httplog.ErrorLog(logger).Print(tt.line)
		if len(got) != 1 || !strings.Contains(got[0], tt.want) {
			t.Errorf("%q logged %q, want one line with %s", tt.line, got, tt.want)
		}
	}
}
