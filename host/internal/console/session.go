package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Session limits.
const (
	// CookieName is the session cookie.
	CookieName = "moat_console"
	// SessionIdle ends a session not used for this long.
	SessionIdle = 30 * time.Minute
	// SessionMax ends a session this long after login, used or not.
	SessionMax = 12 * time.Hour
	// maxSessions bounds the store; the oldest session is dropped past it.
	maxSessions = 256
	// MaxLoginFailures is the failed logins (and, on the admin listener,
	// wrong admin bearer tokens) allowed per source address per minute.
	MaxLoginFailures = 10
	// csrfField is the form field, csrfHeader the header, carrying the token.
	csrfField  = "csrf"
	csrfHeader = "X-CSRF-Token"
)

// session is one logged-in operator.
type session struct {
	csrf    string
	created time.Time
	seen    time.Time
}

// sessionStore holds sessions in memory, keyed by the SHA-256 of the id so
// the map never holds a usable cookie value.
type sessionStore struct {
	mu   sync.Mutex
	byID map[[32]byte]*session
}

func newSessionStore() *sessionStore {
	return &sessionStore{byID: map[[32]byte]*session{}}
}

// randomToken returns 32 random bytes, base64url.
func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// create starts a session and returns its id.
func (s *sessionStore) create(now time.Time) (string, *session) {
	id := randomToken()
	sess := &session{csrf: randomToken(), created: now, seen: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.byID {
		if v.expired(now) {
			delete(s.byID, k)
		}
	}
	for len(s.byID) >= maxSessions {
		var oldest [32]byte
		var at time.Time
		for k, v := range s.byID {
			if at.IsZero() || v.created.Before(at) {
				oldest, at = k, v.created
			}
		}
		delete(s.byID, oldest)
	}
	s.byID[sha256.Sum256([]byte(id))] = sess
	return id, sess
}

func (v *session) expired(now time.Time) bool {
	return now.Sub(v.seen) > SessionIdle || now.Sub(v.created) > SessionMax
}

// get returns the live session for id and marks it used.
func (s *sessionStore) get(id string, now time.Time) *session {
	if id == "" {
		return nil
	}
	k := sha256.Sum256([]byte(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.byID[k]
	if v == nil {
		return nil
	}
	if v.expired(now) {
		delete(s.byID, k)
		return nil
	}
	v.seen = now
	return v
}

func (s *sessionStore) delete(id string) {
	s.mu.Lock()
	delete(s.byID, sha256.Sum256([]byte(id)))
	s.mu.Unlock()
}

func sourceAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// tokenOK compares the offered token with the admin token in constant time
// (hashing both first so the length does not leak either). An empty admin
// token matches nothing.
func tokenOK(got, want string) bool {
	if want == "" {
		return false
	}
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// secure reports whether the cookie must be Secure: the request came over
// TLS, or the console's configured origin is https.
func (c *Console) secure(r *http.Request) bool {
	return r.TLS != nil || strings.HasPrefix(strings.ToLower(c.opts.Origin), "https://")
}

// origin is the origin POSTs must come from.
func (c *Console) origin(r *http.Request) string {
	if c.opts.Origin != "" {
		return strings.TrimSuffix(c.opts.Origin, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// sameOrigin checks a POST's Origin header (sent by every current browser
// on POST) against the console's origin, falling back to Referer and
// Sec-Fetch-Site. A request with none of them is not from a browser page
// and is left to the CSRF token.
func (c *Console) sameOrigin(r *http.Request) bool {
	want := c.origin(r)
	if o := r.Header.Get("Origin"); o != "" {
		return o == want
	}
	if ref := r.Header.Get("Referer"); ref != "" {
		u, err := url.Parse(ref)
		return err == nil && u.Scheme+"://"+u.Host == want
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin" || site == "none"
	}
	return true
}

// current returns the request's live session, or nil.
func (c *Console) current(r *http.Request) *session {
	ck, err := r.Cookie(CookieName)
	if err != nil {
		return nil
	}
	return c.sessions.get(ck.Value, c.now())
}

func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name:     CookieName,
		Value:    value,
		Path:     Prefix,
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   c.secure(r),
		SameSite: http.SameSiteStrictMode,
	})
}

// page wraps an HTML page: without a session it redirects to the login form.
func (c *Console) page(h func(http.ResponseWriter, *http.Request, *session)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess := c.current(r)
		if sess == nil {
			http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
			return
		}
		h(w, r, sess)
	})
}

// api wraps a JSON endpoint: without a session it answers 401.
func (c *Console) api(h func(*http.Request) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c.current(r) == nil {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "login required"})
			return
		}
		v, err := h(r)
		var bad *badRequest
		switch {
		case errors.As(err, &bad):
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		case err != nil:
			c.log.Warn("console: reading data", "path", r.URL.Path, "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
}

// mutating wraps a state-changing POST: it needs a session, a same-origin
// request and the session's CSRF token (form field or header).
func (c *Console) mutating(h func(http.ResponseWriter, *http.Request, *session)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess := c.current(r)
		if sess == nil {
			http.Error(w, "login required", http.StatusUnauthorized)
			return
		}
		if !c.sameOrigin(r) {
			http.Error(w, "cross-origin request refused", http.StatusForbidden)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		got := r.Header.Get(csrfHeader)
		if got == "" {
			got = r.PostFormValue(csrfField)
		}
		if subtle.ConstantTimeCompare([]byte(got), []byte(sess.csrf)) != 1 {
			http.Error(w, "missing or wrong CSRF token", http.StatusForbidden)
			return
		}
		h(w, r, sess)
	})
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if c.current(r) != nil {
		http.Redirect(w, r, Prefix, http.StatusSeeOther)
		return
	}
	c.render(w, http.StatusOK, "login", loginPageView(""))
}

func loginPageView(errText string) view {
	return view{Page: "login", Title: "Log in", Data: errText}
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	now := c.now()
	addr := sourceAddr(r)
	if !c.sameOrigin(r) {
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
		return
	}
	if ok, _ := c.throttle.Attempt(addr, now); !ok {
		c.render(w, http.StatusTooManyRequests, "login", loginPageView("Too many failed logins; wait a minute."))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if c.opts.Token == "" {
		c.render(w, http.StatusServiceUnavailable, "login", loginPageView("No admin token is configured: the console is closed."))
		return
	}
	if !tokenOK(r.PostFormValue("token"), c.opts.Token) {
		c.log.Warn("console: failed login", "source", addr)
		c.render(w, http.StatusUnauthorized, "login", loginPageView("Wrong token."))
		return
	}
	c.throttle.Succeeded(addr, now)
	if old, err := r.Cookie(CookieName); err == nil {
		c.sessions.delete(old.Value) // no session fixation: always a new id
	}
	id, _ := c.sessions.create(now)
	c.setCookie(w, r, id, int(SessionMax/time.Second))
	c.log.Info("console: login", "source", addr)
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, _ *session) {
	if ck, err := r.Cookie(CookieName); err == nil {
		c.sessions.delete(ck.Value)
	}
	c.setCookie(w, r, "", -1)
	http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
}
