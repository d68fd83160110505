// Package httplog turns the error log of net/http and x/net/http2 servers
// (http.Server.ErrorLog, a *log.Logger) into logr lines: recovered handler
// panics as errors with their stack, what single clients do wrong at V(1).
// The gateway and the control API use it for every server they build.
package httplog
