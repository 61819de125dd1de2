package server

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/moat-gateway/moat/plugins/piiredact"
	"github.com/moat-gateway/moat/plugins/secretredact"
)

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("content-type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// redactor is the audit log's "redacted" content mode: the built-in PII
// and secret redactors, run natively.
func redactor() func(string) string {
	return func(s string) string {
		return strings.Clone(piiredact.Redact(secretredact.Redact(s)))
	}
}
