package gateway

import (
	"fmt"

	"github.com/moat-gateway/moat/host/internal/anthropic"
	"github.com/moat-gateway/moat/host/internal/config"
)

// checkRelay refuses a relay_unknown_types entry that names a type moat
// judges: listing it would not relay it unjudged, and says the operator
// misread what it does.
func checkRelay(cfg *config.Config) error {
	for _, n := range cfg.Upstream.RelayUnknownTypes {
		if anthropic.KnownBlockType(n) || anthropic.KnownDeltaType(n) || anthropic.KnownEventType(n) {
			return fmt.Errorf("upstream.relay_unknown_types: %q is a type moat judges; only unknown types can be relayed", n)
		}
	}
	return nil
}
