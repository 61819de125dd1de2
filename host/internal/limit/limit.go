// Package limit enforces request rates, token rates, in-flight caps and
// spend budgets per client and per user, in memory or shared through Redis.
//
// The HTTP layer calls, per request:
//
//	t, err := l.Admit(ctx, id)          // rates, token window, in-flight slot
//	defer t.Done()
//	r, err := l.Reserve(ctx, id, model, estInput, maxTokens) // worst case
//	... call upstream ...
//	cost, err := r.Settle(ctx, model, usage) // or r.Release(ctx) on failure
//
// Every refusal is a *fault.Error of a kind (rate limited, budget exhausted,
// over budget) with the message and headers to send. When the store cannot
// be reached, calls fail closed with a fault.StoreUnavailable unless
// Config.FailOpen is set, in which case they admit and log.
//
// Budgets are reserve-then-settle: Reserve holds the worst case in every
// budget that applies, atomically (one Lua script in Redis, one mutex in
// memory), so racing calls cannot jointly overrun; Settle swaps the hold
// for the real cost. A budget that cannot take the worst case refuses with
// 429 rate_limit_error — the same type as Anthropic's own spend limits, so
// SDKs treat it as retryable — whose message names the budget (scope, id,
// period), its spend, and the UTC time it resets, with retry-after set to
// that time. A call whose worst case exceeds a whole budget gets 400
// invalid_request_error instead, since waiting cannot help.
//
// Persistence: with the memory store, settled spend and fired alerts are
// committed to a bbolt file (Store.StateFile) by a background writer, so a
// restart keeps the period's spend; Redis keeps everything itself, and
// in-flight slots and reservations there carry leases (Options.Lease) so a
// crashed instance's holds expire.
//
// Keys: request rates count per client and per (client, user), because
// user_rate can be set per client; token windows and user budgets count per
// user id across clients, since they are set once for everybody. A caller
// that takes user ids from client-supplied headers should namespace them if
// users of different clients must be kept apart.
package limit

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moat-gateway/moat/host/internal/fault"
	"github.com/ulule/limiter/v3"
)

// Identity is who a request counts against. User "" means no end user:
// user rates, token limits and user budgets do not apply.
type Identity struct {
	Client string
	User   string
}

// Options are the inputs of New that a reload does not change. The zero
// value is usable.
type Options struct {
	// Environment names the deployment in budget alerts; "" leaves it
	// empty.
	Environment string
	// Logger receives alerts, fail-open admissions and store trouble;
	// nil discards.
	Logger *slog.Logger
	// HTTPClient posts alert webhooks; nil uses a client with a 5s timeout.
	HTTPClient *http.Client
	// Now is the clock for budget periods and token windows; nil is
	// time.Now. (Request rates use ulule's own wall clock.)
	Now func() time.Time
	// KeyPrefix prefixes every store key; "" is "moat:". Instances that
	// share limits must use the same prefix.
	KeyPrefix string
	// Lease is how long an in-flight slot or a budget reservation held in
	// Redis outlives the instance that took it if that instance dies; live
	// ones are refreshed every Lease/3. Zero is 30s.
	Lease time.Duration
}

// Limiter enforces a Config's rates, caps and budgets. It is safe
// for concurrent use. Close it when done.
type Limiter struct {
	log   *slog.Logger
	http  *http.Client
	now   func() time.Time
	lease time.Duration
	store backend
	kind  string
	env   string
	// storeCfg is what the store was opened with; Reconfigure refuses to
	// change it.
	storeCfg Store
	// pol is the current policy; each call loads it once, so a call sees
	// one config from start to end even when Reconfigure swaps it.
	pol atomic.Pointer[policy]

	liveSlots sync.Map // *Ticket -> leased
	liveRes   sync.Map // *Reservation -> []leased
	fired     sync.Map // alert key -> expireAt

	stop     chan struct{}
	amu      sync.Mutex
	closing  bool           // guarded by amu; no webhook starts once set
	wg       sync.WaitGroup // janitor and webhooks
	closeErr error
	closed   sync.Once
}

// New builds a Limiter enforcing cfg: it opens the budget state file
// (memory store) or connects to Redis, and starts the goroutine that
// refreshes leases and prunes expired state.
func New(ctx context.Context, cfg Config, opts Options) (*Limiter, error) {
	l := &Limiter{
		log:      opts.Logger,
		http:     opts.HTTPClient,
		now:      opts.Now,
		lease:    opts.Lease,
		env:      opts.Environment,
		storeCfg: storeOf(cfg),
		stop:     make(chan struct{}),
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if l.http == nil {
		l.http = &http.Client{Timeout: 5 * time.Second}
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.lease <= 0 {
		l.lease = 30 * time.Second
	}
	prefix := opts.KeyPrefix
	if prefix == "" {
		prefix = "moat:"
	}
	sc := l.storeCfg
	l.kind = sc.Kind
	switch l.kind {
	case StoreMemory:
		st, err := newMemoryStore(prefix, sc.StateFile, l.now(), l.log)
		if err != nil {
			return nil, fmt.Errorf("creating limiter: %w", err)
		}
		l.store = st
	case StoreRedis:
		url := sc.RedisURL
		if url == "" && sc.RedisURLEnv != "" {
			url = os.Getenv(sc.RedisURLEnv)
			if url == "" {
				return nil, fmt.Errorf("creating limiter: limits.redis_url_env names %s, which is not set", sc.RedisURLEnv)
			}
		}
		if url == "" {
			return nil, errors.New("creating limiter: store = \"redis\" needs limits.redis_url or limits.redis_url_env")
		}
		st, err := newRedisStore(ctx, url, prefix)
		if err != nil {
			return nil, fmt.Errorf("creating limiter: %w", err)
		}
		l.store = st
	default:
		return nil, fmt.Errorf("creating limiter: unknown limits.store %q", l.kind)
	}
	p, err := newPolicy(cfg, l.store.rates())
	if err != nil {
		l.store.close()
		return nil, fmt.Errorf("creating limiter: %w", err)
	}
	l.pol.Store(p)
	l.wg.Add(1)
	go l.janitor()
	return l, nil
}

// policy is everything the limiter takes from one Config: the rates,
// token limit, in-flight caps, budgets and prices. It is immutable.
type policy struct {
	cfg        Config
	inFlight   map[string]int // by client id, caps > 0 only
	prices     *priceTable
	clientRate map[string]*limiter.Limiter // by client id; "" = default
	userRate   map[string]*limiter.Limiter
	authRate   *limiter.Limiter
	budgetFP   []string // per cfg.Budgets entry, for alert keys
}

// newPolicy builds the policy of cfg over the rate store rs.
func newPolicy(cfg Config, rs limiter.Store) (*policy, error) {
	cfg = cfg.clone()
	for i := range cfg.Budgets {
		slices.Sort(cfg.Budgets[i].Alerts) // checkAlerts walks them in order
	}
	p := &policy{
		cfg:        cfg,
		inFlight:   map[string]int{},
		prices:     newPriceTable(cfg.Pricing),
		clientRate: map[string]*limiter.Limiter{},
		userRate:   map[string]*limiter.Limiter{},
	}
	mk := func(what string, r Rate) (*limiter.Limiter, error) {
		if r.IsZero() {
			return nil, nil
		}
		if err := r.check(); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		return limiter.New(rs, limiter.Rate{Formatted: r.String(), Period: r.Period, Limit: r.Count}), nil
	}
	var err error
	if p.clientRate[""], err = mk("client rate", cfg.ClientRate); err != nil {
		return nil, err
	}
	if p.userRate[""], err = mk("user rate", cfg.UserRate); err != nil {
		return nil, err
	}
	if p.authRate, err = mk("auth failure rate", cfg.AuthFailRate); err != nil {
		return nil, err
	}
	for _, c := range cfg.Clients {
		cr, ur := p.clientRate[""], p.userRate[""]
		if !c.Rate.IsZero() {
			if cr, err = mk(fmt.Sprintf("client %q: rate", c.ID), c.Rate); err != nil {
				return nil, err
			}
		}
		if !c.UserRate.IsZero() {
			if ur, err = mk(fmt.Sprintf("client %q: user rate", c.ID), c.UserRate); err != nil {
				return nil, err
			}
		}
		p.clientRate[c.ID], p.userRate[c.ID] = cr, ur
		if _, dup := p.inFlight[c.ID]; !dup && c.MaxInFlight > 0 {
			p.inFlight[c.ID] = c.MaxInFlight
		}
	}
	for i, b := range cfg.Budgets {
		if err := b.check(); err != nil {
			return nil, fmt.Errorf("budget %d: %w", i, err)
		}
		sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%s\x00%g\x00%d", b.Scope, b.ID, b.Period, b.USD, b.Tokens))
		p.budgetFP = append(p.budgetFP, hex.EncodeToString(sum[:6]))
	}
	return p, nil
}

// clone copies the slices and maps of c, so a caller changing its Config
// afterwards does not change a running policy.
func (c Config) clone() Config {
	c.Clients = slices.Clone(c.Clients)
	c.Budgets = slices.Clone(c.Budgets)
	for i := range c.Budgets {
		c.Budgets[i].Alerts = slices.Clone(c.Budgets[i].Alerts)
	}
	c.Pricing = maps.Clone(c.Pricing)
	return c
}

// storeOf is the Store of cfg as New opens it: the kind named, and no
// state file for Redis.
func storeOf(cfg Config) Store {
	sc := cfg.Store
	if sc.Kind == "" {
		sc.Kind = StoreMemory
	}
	if sc.Kind != StoreMemory {
		sc.StateFile = ""
	}
	return sc
}

// Reconfigure applies a new Config's request rates, token limit, in-flight
// caps, budgets, alerts, prices and fail_open to calls admitted from now
// on. Counters, in-flight slots, reservations and spend stay in the store,
// so a reload neither forgets what was spent nor frees what is held; calls
// already admitted finish under the policy they started with. It refuses,
// leaving the running policy in place, a Config whose Store differs from
// the running one (limits.store, redis_url, redis_url_env or state_path):
// that needs a restart.
func (l *Limiter) Reconfigure(cfg Config) error {
	want := storeOf(cfg)
	have := l.storeCfg
	switch {
	case want.Kind != have.Kind:
		return fmt.Errorf("reconfiguring limits: changing limits.store needs a restart (running %q, config has %q)", have.Kind, want.Kind)
	case want.RedisURL != have.RedisURL:
		return errors.New("reconfiguring limits: changing limits.redis_url needs a restart")
	case want.RedisURLEnv != have.RedisURLEnv:
		return errors.New("reconfiguring limits: changing limits.redis_url_env needs a restart")
	case want.StateFile != have.StateFile:
		return fmt.Errorf("reconfiguring limits: changing limits.state_path needs a restart (running %s, config has %s)", have.StateFile, want.StateFile)
	}
	p, err := newPolicy(cfg, l.store.rates())
	if err != nil {
		return fmt.Errorf("reconfiguring limits: %w", err)
	}
	l.pol.Store(p)
	return nil
}

func pick(m map[string]*limiter.Limiter, client string) *limiter.Limiter {
	if r, ok := m[client]; ok {
		return r
	}
	return m[""]
}

// janitor refreshes Redis leases of live slots and reservations and prunes
// expired memory state, until Close.
func (l *Limiter) janitor() {
	defer l.wg.Done()
	tick := time.NewTicker(l.lease / 3)
	defer tick.Stop()
	lastPrune := time.Now()
	for {
		select {
		case <-l.stop:
			return
		case <-tick.C:
		}
		var slots, res []leased
		l.liveSlots.Range(func(_, v any) bool {
			slots = append(slots, v.(leased))
			return true
		})
		l.liveRes.Range(func(_, v any) bool {
			res = append(res, v.([]leased)...)
			return true
		})
		ctx, cancel := context.WithTimeout(context.Background(), l.lease/3)
		if err := l.store.refresh(ctx, slots, res, l.lease); err != nil {
			l.log.Warn("limit: refreshing leases failed", "err", err)
		}
		cancel()
		if time.Since(lastPrune) >= time.Minute {
			lastPrune = time.Now()
			now := l.now()
			l.store.prune(now)
			l.fired.Range(func(k, v any) bool {
				if !now.Before(v.(time.Time)) {
					l.fired.Delete(k)
				}
				return true
			})
		}
	}
}

// Close stops the janitor, waits for alert webhooks in flight and closes the
// store. It is idempotent.
func (l *Limiter) Close() error {
	l.closed.Do(func() {
		l.amu.Lock()
		l.closing = true
		l.amu.Unlock()
		close(l.stop)
		l.wg.Wait()
		l.closeErr = l.store.close()
	})
	return l.closeErr
}

// usersFor is how long a user stays in the report after its last request.
const usersFor = 24 * time.Hour

// esc makes an id safe inside a ':'-separated key; very long ids are
// replaced by a hash so keys stay small.
func esc(s string) string {
	if len(s) > 128 {
		sum := sha256.Sum256([]byte(s))
		return "#" + hex.EncodeToString(sum[:16])
	}
	if strings.ContainsAny(s, "%:#") || s == "" {
		return keyEscaper.Replace(s) + "%"
	}
	return s
}

var keyEscaper = strings.NewReplacer("%", "%25", ":", "%3A", "#", "%23")

func unesc(s string) string {
	if !strings.HasSuffix(s, "%") {
		return s
	}
	s = strings.TrimSuffix(s, "%")
	return strings.NewReplacer("%3A", ":", "%23", "#", "%25", "%").Replace(s)
}

func newID() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("limit: crypto/rand failed: %v", err)) // cannot happen on supported platforms
	}
	return hex.EncodeToString(b[:])
}

// storeErr decides what a store failure means: nil (admit, logged) when
// fail_open is set, else a fault.StoreUnavailable.
func (l *Limiter) storeErr(step string, id Identity, err error) error {
	if l.pol.Load().cfg.FailOpen {
		l.log.Warn("limit: store unavailable, admitting (fail_open)", "step", step, "client", id.Client, "user", id.User, "err", err)
		return nil
	}
	l.log.Error("limit: store unavailable, refusing", "step", step, "client", id.Client, "user", id.User, "err", err)
	return storeUnavailable(step, err)
}

// Ticket is an admitted request. Done releases its in-flight slot.
type Ticket struct {
	l       *Limiter
	slotKey string
	slotID  string
	headers http.Header
	once    sync.Once
}

// Headers returns the X-RateLimit-Limit, -Remaining and -Reset (unix
// seconds) of the tightest request-rate limit that applied, or an empty
// header when none did. The caller may modify the result.
func (t *Ticket) Headers() http.Header { return t.headers.Clone() }

// CopyHeaders sets the headers of Headers in dst without cloning them: the
// ticket never changes its values, and dst must not change them in place
// either (Set and Add replace or grow a value slice; they are fine).
func (t *Ticket) CopyHeaders(dst http.Header) {
	for k, vs := range t.headers {
		dst[k] = vs
	}
}

// Done releases the in-flight slot. It is idempotent and safe on nil.
func (t *Ticket) Done() {
	if t == nil {
		return
	}
	t.once.Do(func() {
		if t.slotKey == "" {
			return
		}
		t.l.liveSlots.Delete(t)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := t.l.store.releaseSlot(ctx, t.slotKey, t.slotID); err != nil {
			// The slot's lease expires on its own.
			t.l.log.Warn("limit: releasing in-flight slot failed", "key", t.slotKey, "err", err)
		}
	})
}

type rateHit struct {
	c    limiter.Context
	rate limiter.Rate
}

// Admit checks, in order, the client's request rate, the user's request
// rate, the user's token window and the client's in-flight cap, and takes
// an in-flight slot. A refusal is a fault.RateLimited; a store failure is a
// fault.StoreUnavailable unless fail_open. Every call counts against the request rates,
// refused ones included. Call Ticket.Done when the request ends.
func (l *Limiter) Admit(ctx context.Context, id Identity) (*Ticket, error) {
	if id.Client == "" {
		return nil, errors.New("admitting request: identity has no client")
	}
	p := l.pol.Load()
	t := &Ticket{l: l, headers: http.Header{}}
	var hits []rateHit
	// who names the counted party in a refusal ("client" or "user" and
	// the id): formatted only when refusing.
	check := func(lim *limiter.Limiter, key, who, name string) error {
		if lim == nil {
			return nil
		}
		c, err := lim.Get(ctx, key)
		if err != nil {
			return l.storeErr("counting requests", id, err)
		}
		hits = append(hits, rateHit{c, lim.Rate})
		if c.Reached {
			h := ticketHeaders(hits)
			retry := time.Until(time.Unix(c.Reset, 0))
			return refusal(fault.RateLimited, fmt.Sprintf("rate limit exceeded: %s %q allows %s; retry after %s",
				who, name, describeRate(lim.Rate), time.Unix(c.Reset, 0).UTC().Format(time.RFC3339)), retry, h)
		}
		return nil
	}
	if lim := pick(p.clientRate, id.Client); lim != nil {
		if err := check(lim, "c:"+esc(id.Client), "client", id.Client); err != nil {
			return nil, err
		}
	}
	if lim := pick(p.userRate, id.Client); lim != nil && id.User != "" {
		if err := check(lim, "u:"+esc(id.Client)+":"+esc(id.User), "user", id.User); err != nil {
			return nil, err
		}
	}
	t.headers = ticketHeaders(hits)
	now := l.now()
	if id.User != "" {
		if err := l.store.seen(ctx, esc(id.Client)+":"+esc(id.User), now); err != nil {
			l.log.Debug("limit: recording user for report failed", "err", err)
		}
		if tpm := p.cfg.UserTokensPerMinute; tpm > 0 {
			key, end := tokenWindow(id.User, now)
			used, err := l.store.tokens(ctx, key)
			if err != nil {
				if err := l.storeErr("reading token window", id, err); err != nil {
					return nil, err
				}
			} else if used >= tpm {
				return nil, refusal(fault.RateLimited, fmt.Sprintf("token rate limit exceeded: user %q used %d of %d input+output tokens allowed per minute; retry after %s",
					id.User, used, tpm, end.UTC().Format(time.RFC3339)), end.Sub(now), t.headers.Clone())
			}
		}
	}
	if maxIn := p.inFlight[id.Client]; maxIn > 0 {
		key, sid := "f:"+esc(id.Client), newID()
		ok, _, err := l.store.acquireSlot(ctx, key, sid, int64(maxIn), l.lease)
		switch {
		case err != nil:
			if err := l.storeErr("taking in-flight slot", id, err); err != nil {
				return nil, err
			}
		case !ok:
			return nil, refusal(fault.RateLimited, fmt.Sprintf("too many requests in flight: client %q allows %d at once", id.Client, maxIn), time.Second, t.headers.Clone())
		default:
			t.slotKey, t.slotID = key, sid
			if l.kind == "redis" {
				l.liveSlots.Store(t, leased{key: key, id: sid})
			}
		}
	}
	return t, nil
}

// tightest is the hit whose limit is closest to refusing.
func tightest(hits []rateHit) rateHit {
	best := hits[0]
	for _, h := range hits[1:] {
		if h.c.Reached && !best.c.Reached || h.c.Remaining < best.c.Remaining {
			best = h
		}
	}
	return best
}

// ticketHeaders is rateHeaders as an http.Header, built with canonical
// keys (what Header.Set would store) without canonicalizing them per call.
func ticketHeaders(hits []rateHit) http.Header {
	if len(hits) == 0 {
		return http.Header{}
	}
	best := tightest(hits)
	return http.Header{
		"X-Ratelimit-Limit":     {strconv.FormatInt(best.c.Limit, 10)},
		"X-Ratelimit-Remaining": {strconv.FormatInt(best.c.Remaining, 10)},
		"X-Ratelimit-Reset":     {strconv.FormatInt(best.c.Reset, 10)},
	}
}

func describeRate(r limiter.Rate) string { return describeRateOf(r, "requests") }

func describeRateOf(r limiter.Rate, noun string) string {
	unit := map[time.Duration]string{time.Second: "second", time.Minute: "minute", time.Hour: "hour", 24 * time.Hour: "day"}[r.Period]
	if unit == "" {
		unit = r.Period.String()
	}
	return fmt.Sprintf("%d %s per %s", r.Limit, noun, unit)
}

// tokenWindow is the key of the fixed UTC minute holding now, and its end.
func tokenWindow(user string, now time.Time) (string, time.Time) {
	start := now.UTC().Truncate(time.Minute)
	return "t:" + esc(user) + ":" + strconv.FormatInt(start.Unix(), 10), start.Add(time.Minute)
}

// recordTokens adds n to the user's current token window.
func (l *Limiter) recordTokens(ctx context.Context, user string, n int64) error {
	if user == "" || n <= 0 || l.pol.Load().cfg.UserTokensPerMinute <= 0 {
		return nil
	}
	key, _ := tokenWindow(user, l.now())
	_, err := l.store.addTokens(ctx, key, n, 2*time.Minute)
	return err
}

// reserveTokens holds a call's worst-case tokens (estimated input plus
// max_tokens) in the user's per-minute token window, so concurrent calls
// cannot together overrun limits.user_tokens_per_minute: the add and the
// check are one atomic step in the store, and a refused add is undone.
func (l *Limiter) reserveTokens(ctx context.Context, p *policy, r *Reservation, tok int64) error {
	tpm := p.cfg.UserTokensPerMinute
	if r.id.User == "" || tpm <= 0 {
		return nil
	}
	now := l.now()
	key, end := tokenWindow(r.id.User, now)
	if tok > tpm {
		return refusal(fault.RateLimited, fmt.Sprintf("token rate limit: this request may use %d input+output tokens (estimated input plus max_tokens), more than the %d user %q may use per minute; lower max_tokens or send less",
			tok, tpm, r.id.User), time.Minute, nil)
	}
	total, err := l.store.addTokens(ctx, key, tok, 2*time.Minute)
	if err != nil {
		return l.storeErr("reserving tokens", r.id, err)
	}
	if total > tpm {
		if _, err := l.store.addTokens(ctx, key, -tok, 2*time.Minute); err != nil {
			l.log.Warn("limit: undoing a refused token reservation failed", "user", r.id.User, "err", err)
		}
		return refusal(fault.RateLimited, fmt.Sprintf("token rate limit exceeded: user %q has %d of %d input+output tokens per minute in use or spent, and this request may use %d; retry after %s",
			r.id.User, total-tok, tpm, tok, end.UTC().Format(time.RFC3339)), end.Sub(now), nil)
	}
	r.tpmKey, r.tpmHeld = key, tok
	return nil
}

// settleTokens replaces a call's reserved tokens by its real ones.
func (r *Reservation) settleTokens(ctx context.Context, used int64) error {
	if r.tpmKey == "" {
		return r.l.recordTokens(ctx, r.id.User, used)
	}
	key, held := r.tpmKey, r.tpmHeld
	r.tpmKey, r.tpmHeld = "", 0
	if d := used - held; d != 0 {
		_, err := r.l.store.addTokens(ctx, key, d, 2*time.Minute)
		return err
	}
	return nil
}

// AuthFailure counts one failed authentication from ip and with the
// credential cred ("" when none was presented), and returns a fault.RateLimited
// when this failure is beyond limits.auth_fail_rate for either (nil for the
// first rate's worth of failures in a window). Counting is atomic, so
// racing failures get exactly the rate's worth of nils.
func (l *Limiter) AuthFailure(ctx context.Context, ip, cred string) error {
	rate := l.pol.Load().authRate
	if rate == nil {
		return nil
	}
	var refused error
	for _, k := range authFailureKeys(ip, cred) {
		c, err := rate.Get(ctx, k)
		if err != nil {
			return l.storeErr("counting auth failures", Identity{}, err)
		}
		if c.Reached && refused == nil {
			refused = authRefusal(rate, c)
		}
	}
	return refused
}

// authFailureKeys are the counters one failed authentication adds to: the
// address, and the presented credential so that one stolen or guessed
// credential tried from many addresses is locked out too.
func authFailureKeys(ip, cred string) []string {
	keys := make([]string, 0, 2)
	if ip != "" {
		keys = append(keys, "ip:"+esc(ip))
	}
	if cred != "" {
		keys = append(keys, "cred:"+esc(cred))
	}
	return keys
}

func authRefusal(rate *limiter.Limiter, c limiter.Context) error {
	reset := time.Unix(c.Reset, 0)
	return refusal(fault.RateLimited, fmt.Sprintf("too many failed authentications from this address or with this credential (limit %s); retry after %s; requests with valid credentials are still served",
		describeRateOf(rate.Rate, "failures"), reset.UTC().Format(time.RFC3339)), time.Until(reset), nil)
}
