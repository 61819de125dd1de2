package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/moat-gateway/moat/host/internal/anthropic"
	"github.com/moat-gateway/moat/host/internal/auth"
	"github.com/moat-gateway/moat/host/internal/builtin"
	"github.com/moat-gateway/moat/host/internal/config"
	"github.com/moat-gateway/moat/host/internal/pipeline"
	"github.com/moat-gateway/moat/host/internal/plan"
	"github.com/moat-gateway/moat/host/internal/prompt"
	"github.com/moat-gateway/moat/host/internal/upstream"
	"github.com/moat-gateway/moat/host/internal/wasm"
	"github.com/moat-gateway/moat/plugins/jsonschema"
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

	input, output pipeline.Chain
	clients       map[string]*clientState
	routes        map[string]*routeState
	// relayBlocks are the request block types relayed outside the content
	// model (upstream.relay_unknown_types).
	relayBlocks anthropic.Relay
	// trusted are the proxies whose X-Forwarded-For is believed
	// (server.trusted_proxies).
	trusted []netip.Prefix
	// templates are the routes' compiled prompts, by route name.
	templates map[string]*prompt.Template
	// refs counts requests using this state, so Retire waits for them.
	refs refCount
}

type clientState struct {
	input, output pipeline.Chain
	// schema is the json-schema validator of a format = "json" client.
	schema pipeline.Chain
}

type routeState struct {
	cfg           *config.Route
	tmpl          *prompt.Template
	input, output pipeline.Chain
	// schema is the json-schema validator of a format = "json" route.
	schema  pipeline.Chain
	clients map[string]bool
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
	templates, err := compileRoutes(cfg)
	if err != nil {
		return nil, err
	}
	a, err := auth.New(cfg, local)
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
	st := &State{Config: cfg, Auth: a, CORS: auth.CORS(cfg, local), Plugins: reg, trusted: trusted, clients: map[string]*clientState{}, routes: map[string]*routeState{}, templates: templates}
	fail := func(err error) (*State, error) { _ = reg.Close(ctx); return nil, err }
	if len(cfg.Upstream.RelayUnknownTypes) > 0 {
		st.relayBlocks = make(anthropic.Relay, len(cfg.Upstream.RelayUnknownTypes))
		for _, t := range cfg.Upstream.RelayUnknownTypes {
			st.relayBlocks[t] = true
		}
	}
	if st.input, err = reg.PhaseChain(abi.PhaseInput, cfg.Pipeline.Input); err != nil {
		return fail(fmt.Errorf("pipeline.input: %w", err))
	}
	if st.output, err = reg.PhaseChain(abi.PhaseOutput, cfg.Pipeline.Output); err != nil {
		return fail(fmt.Errorf("pipeline.output: %w", err))
	}
	all := append(append([]config.Client(nil), cfg.Clients...), local...)
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
	var err error
	for i := range all {
		cl := &all[i]
		cs := &clientState{}
		if cs.input, err = reg.PhaseChain(abi.PhaseInput, cl.InputChain(cfg.Pipeline.Input)); err != nil {
			return fmt.Errorf("clients[%q].input: %w", cl.ID, err)
		}
		if cs.output, err = reg.PhaseChain(abi.PhaseOutput, cl.OutputChain(cfg.Pipeline.Output)); err != nil {
			return fmt.Errorf("clients[%q].output: %w", cl.ID, err)
		}
		if cl.Format == "json" {
			if cs.schema, err = schemaChain(cl.Schema); err != nil {
				return fmt.Errorf("clients[%q].schema: %w", cl.ID, err)
			}
		}
		st.clients[cl.ID] = cs
	}
	return nil
}

// buildRoutes builds each route's chains, schema validator and the set of
// clients (of all) that may call it.
func (st *State) buildRoutes(all []config.Client) error {
	cfg, reg := st.Config, st.Plugins
	var err error
	for i := range cfg.Routes {
		r := &cfg.Routes[i]
		rs := &routeState{cfg: r, tmpl: st.templates[r.Name], clients: map[string]bool{}}
		in, out := cfg.Pipeline.Input, cfg.Pipeline.Output
		if r.Input != nil {
			in = *r.Input
		}
		if r.Output != nil {
			out = *r.Output
		}
		if rs.input, err = reg.PhaseChain(abi.PhaseInput, in); err != nil {
			return fmt.Errorf("routes[%q].input: %w", r.Name, err)
		}
		if rs.output, err = reg.PhaseChain(abi.PhaseOutput, out); err != nil {
			return fmt.Errorf("routes[%q].output: %w", r.Name, err)
		}
		if r.Format == "json" {
			if rs.schema, err = schemaChain(r.Schema); err != nil {
				return fmt.Errorf("routes[%q].schema: %w", r.Name, err)
			}
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

// compileRoutes compiles every route's prompt as a call renders it
// (plan.Route: the tag, the variables, and each {{var.NAME}} of the task
// declared when variables is set), so a route that could only fail at
// call time is refused by config check, serve and reload instead.
func compileRoutes(cfg *config.Config) (map[string]*prompt.Template, error) {
	out := make(map[string]*prompt.Template, len(cfg.Routes))
	for i := range cfg.Routes {
		t, err := plan.Route(&cfg.Routes[i])
		if err != nil {
			return nil, fmt.Errorf("checking routes: %w", err)
		}
		out[cfg.Routes[i].Name] = t
	}
	return out, nil
}

// schemaChain is the built-in json-schema validator, run natively with the
// given schema. A nil schema checks only that the output parses as JSON.
// The output guard runs it on the model's raw text, before the output
// chain, which then sees each string value of the parsed JSON.
func schemaChain(schema map[string]any) (pipeline.Chain, error) {
	in, out, ok := builtin.Native("json-schema")
	if !ok {
		return nil, fmt.Errorf("the json-schema built-in is missing from this build")
	}
	if schema == nil {
		schema = map[string]any{}
	}
	cfgJSON, err := json.Marshal(map[string]any{"schema": schema})
	if err != nil {
		return nil, fmt.Errorf("encoding schema: %w", err)
	}
	// Check the schema now rather than on the first response.
	if err := jsonschema.CheckConfig(cfgJSON); err != nil {
		return nil, err
	}
	st := &pipeline.NativeStage{PluginName: "json-schema", Input: in, Output: out}
	p := &pipeline.Plugin{Stage: st, Name: "json-schema", OnError: "reject", Config: cfgJSON, Streaming: "buffer"}
	return pipeline.Chain{p}, nil
}

// client returns the chains for a client id.
func (st *State) client(id string) *clientState {
	if cs, ok := st.clients[id]; ok {
		return cs
	}
	return &clientState{input: st.input, output: st.output}
}

// outputGuard builds the output guard for a call.
func (st *State) outputGuard(cs *clientState, canary string, meta abi.Context) *outputGuard {
	return newOutputGuard(cs.output, cs.schema, canary, meta)
}

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
