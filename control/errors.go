package control

import (
	"encoding/json"
	"net/http"
)

// errorBody is the JSON of every refusal: {"error": "<one line>"}.
type errorBody struct {
	Error string `json:"error"`
}

// writeJSON answers v as JSON with code; nothing the control API answers
// may be cached.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers {"error": msg} with code, and the challenge of a 401
// or the Retry-After of a 429 and 503.
func writeError(w http.ResponseWriter, code int, msg string) {
	switch code {
	case http.StatusTooManyRequests:
		w.Header().Set("Retry-After", "1")
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "5")
	}
	writeJSON(w, code, errorBody{Error: msg})
}
