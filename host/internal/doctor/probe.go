package doctor

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/moat-gateway/moat/host/internal/config"
	"github.com/moat-gateway/moat/host/internal/keysource"
)

// ProbeName is the name of the result Probe returns.
const ProbeName = "upstream accepts the key"

// Probe asks the upstream whether it accepts moat's key, with the cheapest
// authenticated call (GET /v1/models?limit=1, within 10 seconds): a 401 or
// 403 fails (the key is revoked, mistyped or for another organization; a
// running moat answers its clients 502 and /readyz is not ready), another
// non-2xx status or a network error warns. Only the key's fingerprint is
// ever printed. client nil means http.DefaultClient.
func Probe(ctx context.Context, cfg *config.Config, env func(string) string, client *http.Client) Result {
	c := &checker{cfg: cfg, env: env}
	c.upstreamKey()
	if c.key == "" {
		return Result{Name: ProbeName, Status: Fail, Detail: "no upstream key to try", Fix: "see the upstream key source check"}
	}
	if client == nil {
		client = http.DefaultClient
	}
	fp := keysource.Fingerprint(c.key)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	url := strings.TrimSuffix(cfg.Upstream.BaseURL, "/") + "/v1/models?limit=1"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Result{Name: ProbeName, Status: Fail, Detail: fmt.Sprintf("building the request: %v", err), Fix: "fix upstream.base_url"}
	}
	req.Header.Set("x-api-key", c.key)
	req.Header.Set("anthropic-version", "2023-06-01")
	resp, err := client.Do(req)
	if err != nil {
		return Result{Name: ProbeName, Status: Warn, Detail: fmt.Sprintf("could not reach %s: %v", cfg.Upstream.BaseURL, redactErr(err, c.key)), Fix: "check the network path to upstream.base_url"}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return Result{Name: ProbeName, Status: Fail,
			Detail: fmt.Sprintf("the upstream rejected key %s with status %d: a running moat answers every client 502 and /readyz is not ready", fp, resp.StatusCode),
			Fix:    "put a valid Anthropic key in the key source (a key file is re-read without a restart)"}
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return Result{Name: ProbeName, Status: Warn, Detail: fmt.Sprintf("the upstream answered status %d to key %s", resp.StatusCode, fp), Fix: "check upstream.base_url and the upstream's status"}
	}
	return Result{Name: ProbeName, Status: Pass, Detail: fmt.Sprintf("the upstream accepts key %s", fp)}
}

// redactErr removes the key from an error's text, in case a transport
// quoted it.
func redactErr(err error, key string) string {
	return strings.ReplaceAll(err.Error(), key, "[key]")
}
