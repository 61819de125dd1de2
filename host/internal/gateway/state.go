package gateway

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/moat-gateway/moat/host/internal/anthropic"
	"github.com/moat-gateway/moat/host/internal/auth"
	"github.com/moat-gateway/moat/host/internal/builtin"
	"github.com/moat-gateway/moat/host/internal/config"
	"github.com/moat-gateway/moat/host/internal/exchange"
	"github.com/moat-gateway/moat/host/internal/pipeline"
	"github.com/moat-gateway/moat/host/internal/plan"
	"github.com/moat-gateway/moat/host/internal/streamguard"
	"github.com/moat-gateway/moat/host/internal/upstream"
	"github.com/moat-gateway/moat/host/internal/wasm"
	"github.com/moat-gateway/moat/sdk/abi"
)

// State is everything built from one config: the config itself, who may
// call, the loaded plugins, the chains and the upstream client. It is
// immutable once served; a reload builds a new State and swaps it in.
type State struct {
	Config  *config.Config
	Auth    *auth.Authenticator
	CORS    *auth.CORSPolicy
	Plugins *pipeline.Registry
	// Upstream calls the API at Config.Upstream.BaseURL with its timeouts
	// and [retry]. The builder sets it before the state is served (it
	// needs the key source, which outlives states); a state that is only
	// checked has none.
	Upstream *upstream.Client

	// fallback is the chains of a caller that is no configured client.
	fallback exchange.Chains
	clients  map[string]*exchange.Chains
	// policies are the clients' exchange policies, by client id.
	policies map[string]*exchange.Client
	// policy is what the exchange reads of this state.
	policy exchange.Policy
	routes map[string]*routeState
	// relayBlocks are the request block types relayed outside the content
	// model (upstream.relay_unknown_types).
	relayBlocks anthropic.Relay
	// trusted are the proxies whose X-Forwarded-For is believed
	// (server.trusted_proxies).
	trusted []netip.Prefix
	// compiled are the routes' settings and compiled prompts, by route
	// name, before their chains are added.
	compiled map[string]exchange.Route
	// refs counts requests using this state, so Retire waits for them.
	refs refCount
}

// routeState is a route: what its calls need (exchange.Route: its
// settings, compiled prompt and chains), and the clients that may call it.
type routeState struct {
	exchange.Route
	clients map[string]bool
}

// buildChains builds chains from the input and output chains and, for
// format = "json", the schema's validator.
func buildChains(c *exchange.Chains, input, output pipeline.Chain, format string, schema map[string]any) error {
	c.Input, c.Output = input, streamguard.Chain(output)
	if format != "json" {
		return nil
	}
	s, err := streamguard.Schema(schema)
	if err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	c.Schema = &s
	return nil
}

// BuildState loads plugins and builds chains for cfg. local are clients
// generated on first start. rt runs wasm plugins.
func BuildState(ctx context.Context, cfg *config.Config, local []config.Client, rt *wasm.Runtime) (*State, error) {
	if err := checkRelay(cfg); err != nil {
		return nil, err
	}
	trusted, err := plan.TrustedProxies(cfg)
	if err != nil {
		return nil, err
	}
	compiled, err := compileRoutes(cfg)
	if err != nil {
		return nil, err
	}
	authOpts, err := plan.Auth(cfg, local)
	if err != nil {
		return nil, fmt.Errorf("building authenticator: %w", err)
	}
	a, err := auth.New(authOpts)
	if err != nil {
		return nil, fmt.Errorf("building authenticator: %w", err)
	}
	spec, err := plan.Pipeline(cfg)
	if err != nil {
		return nil, fmt.Errorf("loading plugins: %w", err)
	}
	reg, err := pipeline.NewRegistry(ctx, spec, rt, builtin.Native, builtin.Module)
	if err != nil {
		return nil, fmt.Errorf("loading plugins: %w", err)
	}
	st := &State{Config: cfg, Auth: a, CORS: auth.CORS(authOpts.Clients), Plugins: reg, trusted: trusted,
		clients: map[string]*exchange.Chains{}, policies: map[string]*exchange.Client{}, routes: map[string]*routeState{}, compiled: compiled}
	fail := func(err error) (*State, error) { _ = reg.Close(ctx); return nil, err }
	if len(cfg.Upstream.RelayUnknownTypes) > 0 {
		st.relayBlocks = make(anthropic.Relay, len(cfg.Upstream.RelayUnknownTypes))
		for _, t := range cfg.Upstream.RelayUnknownTypes {
			st.relayBlocks[t] = true
		}
	}
	if st.fallback.Input, err = reg.PhaseChain(abi.PhaseInput, cfg.Pipeline.Input); err != nil {
		return fail(fmt.Errorf("pipeline.input: %w", err))
	}
	output, err := reg.PhaseChain(abi.PhaseOutput, cfg.Pipeline.Output)
	if err != nil {
		return fail(fmt.Errorf("pipeline.output: %w", err))
	}
	st.fallback.Output = streamguard.Chain(output)
	st.policy = exchange.Policy{Options: plan.Exchange(cfg), Relay: st.relayBlocks, Chains: st.client, Clients: st.clientPolicy}
	all := plan.Clients(cfg, local)
	if err := st.buildClients(all); err != nil {
		return fail(err)
	}
	if err := st.buildRoutes(all); err != nil {
		return fail(err)
	}
	return st, nil
}

// buildClients builds each client's chains and, for format = "json", its
// schema validator.
func (st *State) buildClients(all []config.Client) error {
	cfg, reg := st.Config, st.Plugins
	for i := range all {
		cl := &all[i]
		cs := &exchange.Chains{}
		in, err := reg.PhaseChain(abi.PhaseInput, cl.InputChain(cfg.Pipeline.Input))
		if err != nil {
			return fmt.Errorf("clients[%q].input: %w", cl.ID, err)
		}
		out, err := reg.PhaseChain(abi.PhaseOutput, cl.OutputChain(cfg.Pipeline.Output))
		if err != nil {
			return fmt.Errorf("clients[%q].output: %w", cl.ID, err)
		}
		if err := buildChains(cs, in, out, cl.Format, cl.Schema); err != nil {
			return fmt.Errorf("clients[%q].%w", cl.ID, err)
		}
		st.clients[cl.ID] = cs
		pol := plan.ClientPolicy(cl)
		st.policies[cl.ID] = &pol
	}
	return nil
}

// buildRoutes builds each route's chains, schema validator and the set of
// clients (of all) that may call it.
func (st *State) buildRoutes(all []config.Client) error {
	cfg, reg := st.Config, st.Plugins
	for i := range cfg.Routes {
		r := &cfg.Routes[i]
		rs := &routeState{Route: st.compiled[r.Name], clients: map[string]bool{}}
		in, out := cfg.Pipeline.Input, cfg.Pipeline.Output
		if r.Input != nil {
			in = *r.Input
		}
		if r.Output != nil {
			out = *r.Output
		}
		inChain, err := reg.PhaseChain(abi.PhaseInput, in)
		if err != nil {
			return fmt.Errorf("routes[%q].input: %w", r.Name, err)
		}
		outChain, err := reg.PhaseChain(abi.PhaseOutput, out)
		if err != nil {
			return fmt.Errorf("routes[%q].output: %w", r.Name, err)
		}
		if err := buildChains(&rs.Chains, inChain, outChain, r.Format, r.Schema); err != nil {
			return fmt.Errorf("routes[%q].%w", r.Name, err)
		}
		for _, id := range r.Clients {
			rs.clients[id] = true
		}
		for j := range all {
			if all[j].Local || contains(all[j].Routes, r.Name) {
				rs.clients[all[j].ID] = true
			}
		}
		st.routes[r.Name] = rs
	}
	return nil
}

// compileRoutes compiles every route's settings and its prompt as a call
// renders it (plan.ExchangeRoute: the tag, the variables, and each
// {{var.NAME}} of the task declared when variables is set), so a route
// that could only fail at call time is refused by config check, serve and
// reload instead.
func compileRoutes(cfg *config.Config) (map[string]exchange.Route, error) {
	out := make(map[string]exchange.Route, len(cfg.Routes))
	for i := range cfg.Routes {
		r, err := plan.ExchangeRoute(&cfg.Routes[i])
		if err != nil {
			return nil, fmt.Errorf("checking routes: %w", err)
		}
		out[r.Name] = r
	}
	return out, nil
}

// client returns the chains for a client id.
func (st *State) client(id string) *exchange.Chains {
	if cs, ok := st.clients[id]; ok {
		return cs
	}
	return &st.fallback
}

// clientPolicy returns the exchange policy of a client id, nil for none.
func (st *State) clientPolicy(id string) *exchange.Client { return st.policies[id] }

// Retire waits for the requests using st (up to grace) and closes its
// plugins.
func (st *State) Retire(grace time.Duration) {
	select {
	case <-st.refs.retire():
	case <-time.After(grace):
	}
	_ = st.Plugins.Close(context.Background())
	if st.Upstream != nil {
		st.Upstream.CloseIdle()
	}
}

// refCount counts users of something that is retired once: after retire,
// the count may still go up and down (a request that loaded the state just
// before the swap), until it reaches zero, which closes the channel retire
// returned. Unlike a WaitGroup, acquire may race with the wait.
type refCount struct {
	mu      sync.Mutex
	n       int
	retired bool
	done    chan struct{}
}

// acquire adds a user; it fails once the count has drained after retire.
func (r *refCount) acquire() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.retired && r.n == 0 {
		return false
	}
	r.n++
	return true
}

// add adds a user even after the count drained (requests arriving during
// shutdown are still counted).
func (r *refCount) add() {
	r.mu.Lock()
	r.n++
	r.mu.Unlock()
}

// release removes a user.
func (r *refCount) release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n--
	if r.retired && r.n == 0 && r.done != nil {
		close(r.done)
		r.done = nil
	}
}

// retire marks the end and returns a channel closed when no user is left.
func (r *refCount) retire() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := make(chan struct{})
	r.retired = true
	if r.n == 0 {
		close(ch)
	} else {
		r.done = ch
	}
	return ch
}

// Close closes the state's plugins at once.
func (st *State) Close(ctx context.Context) { _ = st.Plugins.Close(ctx) }
