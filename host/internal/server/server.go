// Package server runs moat: it builds every component from the config,
// serves the public and admin listeners, reloads on SIGHUP, and shuts down
// gracefully. Each component has one lifecycle: load, validate, use, close.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/moat-gateway/moat/host/internal/anomaly"
	"github.com/moat-gateway/moat/host/internal/anthropic"
	"github.com/moat-gateway/moat/host/internal/audit"
	"github.com/moat-gateway/moat/host/internal/config"
	"github.com/moat-gateway/moat/host/internal/console"
	"github.com/moat-gateway/moat/host/internal/gateway"
	"github.com/moat-gateway/moat/host/internal/keysource"
	"github.com/moat-gateway/moat/host/internal/limit"
	"github.com/moat-gateway/moat/host/internal/metrics"
	"github.com/moat-gateway/moat/host/internal/plan"
	"github.com/moat-gateway/moat/host/internal/upstream"
	"github.com/moat-gateway/moat/host/internal/wasm"
)

// Options configure Run.
type Options struct {
	// ConfigPath is the config file (default config.toml).
	ConfigPath string
	// Stdout receives the one-time local key message; Logger the logs.
	Stdout io.Writer
	Logger *slog.Logger
	// Ready, when set, receives the bound public and admin addresses once
	// the listeners are up (admin is "" when disabled).
	Ready func(public, admin string)
	// Getenv reads the environment (default os.Getenv).
	Getenv func(string) string
	// Override, when set, adjusts the loaded config before use (moat demo
	// points the upstream at the built-in stand-in). It also applies on
	// reload.
	Override func(*config.Config)
}

// Server is a running moat.
type Server struct {
	opts    Options
	log     *slog.Logger
	keys    *keysource.Source
	rt      *wasm.Runtime
	limiter *limit.Limiter
	anomaly *anomaly.Detector
	audit   *audit.Logger
	cpRedis *audit.RedisStore
	metrics *metrics.Metrics
	gw      *gateway.Gateway
	local   []config.Client

	mu         sync.Mutex
	lastReload ReloadResult
}

// ReloadResult describes the last reload.
type ReloadResult struct {
	Time  time.Time `json:"time"`
	OK    bool      `json:"ok"`
	Error string    `json:"error,omitempty"`
	// RestartRequired names the restart-only settings the file changed;
	// they keep their running values until moat restarts.
	RestartRequired []string `json:"restart_required,omitempty"`
}

// Run loads the config, starts moat and serves until ctx ends or SIGTERM /
// SIGINT arrives, then shuts down within the configured grace period.
func Run(ctx context.Context, opts Options) error {
	if opts.ConfigPath == "" {
		opts.ConfigPath = "config.toml"
	}
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	cfg, err := config.Load(opts.ConfigPath)
	if err != nil {
		return err
	}
	if opts.Override != nil {
		opts.Override(cfg)
	}
	s := &Server{opts: opts, log: opts.Logger.With("environment", cfg.Environment)}
	if err := s.start(ctx, cfg); err != nil {
		s.close()
		return err
	}
	defer s.close()
	return s.serve(ctx, cfg)
}

func (s *Server) start(ctx context.Context, cfg *config.Config) error {
	var err error
	if s.keys, err = keysource.New(plan.KeySource(cfg.Upstream), s.log); err != nil {
		return err
	}
	s.metrics = metrics.New(metrics.Options{Environment: cfg.Environment})
	secrets := s.keys.Secrets
	aopts := audit.Options{Environment: cfg.Environment, Secrets: secrets, Redact: redactor(), Logger: s.log, Observer: s.metrics}
	if s.cpRedis, err = plan.CheckpointRedis(cfg); err != nil {
		return err
	}
	if s.cpRedis != nil {
		aopts.Checkpoints = append(aopts.Checkpoints, s.cpRedis)
	}
	if s.audit, err = audit.Open(plan.Audit(cfg.Audit), aopts); err != nil {
		return fmt.Errorf("opening audit log: %w", err)
	}
	lcfg, err := plan.Limits(cfg)
	if err != nil {
		return fmt.Errorf("starting limits: %w", err)
	}
	if s.limiter, err = limit.New(ctx, lcfg, limit.Options{Logger: s.log, Environment: cfg.Environment}); err != nil {
		return fmt.Errorf("starting limits: %w", err)
	}
	if s.anomaly, err = anomaly.New(plan.Anomaly(cfg.Anomaly), anomaly.Options{Logger: s.log, Environment: cfg.Environment}); err != nil {
		return err
	}
	if s.rt, err = newRuntime(ctx, cfg, s.log, s.metrics); err != nil {
		return err
	}
	if s.local, err = LocalClients(cfg, s.opts.Stdout); err != nil {
		return err
	}
	st, err := gateway.BuildState(ctx, cfg, s.local, s.rt)
	if err != nil {
		return err
	}
	st.Upstream = upstream.New(plan.Upstream(cfg), s.keys.Key)
	s.gw = gateway.New(gateway.Deps{Limiter: s.limiter, Audit: s.audit, Metrics: s.metrics, Logger: s.log, Secrets: secrets, Anomaly: s.anomaly, KeyFingerprint: func() string { return keysource.Fingerprint(s.keys.Key()) }}, st)
	return nil
}

// newRuntime starts the wasm runtime for cfg: the compilation cache next to
// the config file and the [sandbox] caps. serve and config check share it.
func newRuntime(ctx context.Context, cfg *config.Config, log *slog.Logger, m *metrics.Metrics) (*wasm.Runtime, error) {
	rt, err := wasm.NewRuntimeWith(ctx, wasm.RuntimeOptions{
		CacheDir:       filepath.Join(filepath.Dir(cfg.Path), ".cache", "wazero"),
		Logger:         log,
		MaxConcurrency: cfg.Sandbox.MaxConcurrency,
		MaxMemoryBytes: int64(cfg.Sandbox.MaxMemoryMB) << 20,
		OnBreaker:      func(plugin string, st wasm.BreakerState) { m.Breaker(plugin, string(st)) },
	})
	if err != nil {
		return nil, fmt.Errorf("starting wasm runtime: %w", err)
	}
	return rt, nil
}

// CheckFile is `moat config check`: config.Load (the strict decoding and
// every static problem: keys, values, CIDR lists) and then CheckPlugins,
// the two steps serve and reload run before they use a config. It needs no
// upstream key and writes no local client keys.
func CheckFile(ctx context.Context, path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	if err := CheckPlugins(ctx, cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// CheckPlugins builds cfg's state exactly as serve does at start (the same
// code, gateway.BuildState: route templates, trusted proxies, sha256 pin,
// exports, imports, compilation, pre-warm, chain phases), then closes it,
// so `moat config check` refuses what serve would refuse, with the same
// message.
func CheckPlugins(ctx context.Context, cfg *config.Config) error {
	rt, err := newRuntime(ctx, cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		return err
	}
	defer rt.Close(ctx)
	st, err := gateway.BuildState(ctx, cfg, nil, rt)
	if err != nil {
		return err
	}
	st.Close(ctx)
	return nil
}

func (s *Server) close() {
	ctx := context.Background()
	if s.gw != nil {
		s.gw.State().Close(ctx)
	}
	if s.rt != nil {
		s.rt.Close(ctx)
	}
	if s.limiter != nil {
		_ = s.limiter.Close()
	}
	s.anomaly.Close()
	if s.audit != nil {
		_ = s.audit.Close()
	}
	if s.cpRedis != nil {
		_ = s.cpRedis.Client.Close()
	}
	if s.keys != nil {
		_ = s.keys.Close()
	}
}

func (s *Server) serve(ctx context.Context, cfg *config.Config) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Server.Listen, err)
	}
	pub := &http.Server{
		Handler:           s.gw.Handler(),
		ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout.Duration,
		ReadTimeout:       cfg.Server.ReadTimeout.Duration,
		IdleTimeout:       cfg.Server.IdleTimeout.Duration,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 2)
	go func() { errc <- pub.Serve(ln) }()
	adminAddr := ""
	var admin *http.Server
	if cfg.Admin.Listen != "" {
		aln, err := net.Listen("tcp", cfg.Admin.Listen)
		if err != nil {
			_ = pub.Close()
			return fmt.Errorf("listening on admin %s: %w", cfg.Admin.Listen, err)
		}
		adminAddr = aln.Addr().String()
		admin = &http.Server{Handler: s.adminHandler(cfg), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
		if cfg.Admin.TLSCertFile != "" {
			cert, err := tls.LoadX509KeyPair(cfg.Admin.TLSCertFile, cfg.Admin.TLSKeyFile)
			if err != nil {
				_ = aln.Close()
				_ = pub.Close()
				return fmt.Errorf("loading the admin TLS certificate: %w", err)
			}
			admin.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
			go func() { errc <- admin.ServeTLS(aln, "", "") }()
		} else {
			go func() { errc <- admin.Serve(aln) }()
		}
	}
	s.log.Info("moat listening", "addr", ln.Addr().String(), "admin", adminAddr, "upstream", cfg.Upstream.BaseURL, "key", keysource.Fingerprint(s.keys.Key()))
	if s.opts.Ready != nil {
		s.opts.Ready(ln.Addr().String(), adminAddr)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			if err := s.keys.Reload(); err != nil {
				s.log.Warn("re-reading the upstream key", "err", err)
			}
			if err := s.Reload(ctx); err != nil {
				s.log.Error("reload failed; the previous config keeps running", "err", err)
			}
		case err := <-errc:
			if !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serving: %w", err)
			}
		case <-ctx.Done():
			grace := s.gw.State().Config.Server.ShutdownGrace.Duration
			s.log.Info("shutting down", "grace", grace.String())
			sctx, cancel := context.WithTimeout(context.Background(), grace)
			defer cancel()
			err := pub.Shutdown(sctx)
			if admin != nil {
				_ = admin.Shutdown(sctx)
			}
			_ = s.gw.Wait(sctx)
			if err != nil {
				_ = pub.Close()
				return fmt.Errorf("graceful shutdown: %w", err)
			}
			return nil
		}
	}
}

// Reload re-reads the config file and swaps in the new state: clients,
// routes, chains, the upstream client and limits. Settings built once at
// start (restartOnly) keep their running value; the result and the log
// name those the file changed. On any problem the running config stays.
func (s *Server) Reload(ctx context.Context) error {
	restart, err := s.reload(ctx)
	s.mu.Lock()
	s.lastReload = ReloadResult{Time: time.Now().UTC(), OK: err == nil, RestartRequired: restart}
	if err != nil {
		s.lastReload.Error = err.Error()
	}
	s.mu.Unlock()
	return err
}

func (s *Server) reload(ctx context.Context) ([]string, error) {
	old := s.gw.State()
	cfg, err := config.Load(old.Config.Path)
	if err != nil {
		return nil, err
	}
	if s.opts.Override != nil {
		s.opts.Override(cfg)
	}
	restart := pinRestartOnly(old.Config, cfg)
	local, err := LocalClients(cfg, s.opts.Stdout)
	if err != nil {
		return nil, err
	}
	st, err := gateway.BuildState(ctx, cfg, local, s.rt)
	if err != nil {
		return nil, err
	}
	lcfg, err := plan.Limits(cfg)
	if err == nil {
		err = s.limiter.Reconfigure(lcfg)
	}
	if err != nil {
		st.Close(ctx)
		return nil, fmt.Errorf("applying limits: %w", err)
	}
	st.Upstream = upstream.New(plan.Upstream(cfg), s.keys.Key)
	if len(restart) > 0 {
		s.log.Warn("reload: changed settings that apply only after a restart; they keep their running values", "restart_required", restart)
	}
	prev := s.gw.Swap(st)
	go prev.Retire(old.Config.Server.ShutdownGrace.Duration)
	s.log.Info("config reloaded", "clients", len(cfg.Clients)+len(local), "routes", len(cfg.Routes), "plugins", len(cfg.Plugins), "upstream", cfg.Upstream.BaseURL)
	return restart, nil
}

// adminHandler serves the admin listener: metrics, usage, reload, pprof.
func (s *Server) adminHandler(cfg *config.Config) http.Handler {
	token := s.opts.Getenv(cfg.Admin.TokenEnv)
	mux := http.NewServeMux()
	throttle := newAdminThrottle()
	check := adminTokenCheck(token, cfg.Admin.TokenEnv, throttle, time.Now)
	authed := func(h http.HandlerFunc) http.Handler { return check(h) }
	if cfg.Admin.MetricsAuth {
		mux.Handle("GET /metrics", check(s.metrics.Handler()))
	} else {
		mux.Handle("GET /metrics", s.metrics.Handler())
	}
	mux.Handle("GET /admin/usage", authed(func(w http.ResponseWriter, r *http.Request) {
		rep, err := s.limiter.Usage(r.Context())
		if err != nil {
			adminError(w, http.StatusServiceUnavailable, anthropic.TypeAPI, "usage unavailable")
			return
		}
		writeJSON(w, rep)
	}))
	mux.Handle("POST /admin/reload", authed(func(w http.ResponseWriter, r *http.Request) {
		_ = s.keys.Reload()
		err := s.Reload(r.Context())
		s.mu.Lock()
		res := s.lastReload
		s.mu.Unlock()
		if err != nil {
			w.WriteHeader(http.StatusUnprocessableEntity)
		}
		writeJSON(w, res)
	}))
	auditPath := cfg.Audit.Path
	if cfg.Audit.Disabled {
		auditPath = ""
	}
	mux.Handle(console.Prefix, console.New(console.Options{Token: token, Throttle: throttle, Metrics: s.metrics, Limiter: s.limiter, AuditPath: auditPath, Logger: s.log, Reload: s.Reload,
		Config:          func() *config.Config { return s.gw.State().Config },
		PluginLoadTimes: func() map[string]time.Duration { return s.gw.State().Plugins.LoadTimes() },
		LastReload: func() console.ReloadStatus {
			s.mu.Lock()
			defer s.mu.Unlock()
			return console.ReloadStatus(s.lastReload)
		},
	}).Handler())
	if cfg.Admin.Pprof {
		mux.Handle("GET /debug/pprof/", authed(pprof.Index))
		mux.Handle("GET /debug/pprof/profile", authed(pprof.Profile))
		mux.Handle("GET /debug/pprof/heap", authed(func(w http.ResponseWriter, r *http.Request) { pprof.Handler("heap").ServeHTTP(w, r) }))
	}
	return newHostGuard(cfg.Admin, mux)
}
