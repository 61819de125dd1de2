package wasm

import (
	"os"

	"github.com/moat-gateway/moat/host/internal/pluginerr"
)

// isolationLimits adjusts the hostile plugin's limits for the report:
// MOAT_ISOLATION_BREAKER=off measures the bulkheads alone.
func isolationLimits(l Limits) Limits {
	if os.Getenv("MOAT_ISOLATION_BREAKER") == "off" {
		l.BreakerFailures = -1
	}
	return l
}

// causeName returns the typed cause of err, if any.
func causeName(err error) string { return string(pluginerr.CauseOf(err)) }
