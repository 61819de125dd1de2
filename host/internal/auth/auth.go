// Package auth decides who is calling moat: a client by its moat-issued key
// (x-api-key or Authorization: Bearer), or an end user by a JWT, each checked
// against the client's IP allowlist; trusted clients may name end users with
// a header. It also answers CORS for browser clients.
//
// Rules a reader of a refusal should know:
//   - a request with two x-api-key headers, two Authorization headers, or an
//     x-api-key and an Authorization that differ is refused (401);
//   - an expired or revoked key is refused (401);
//   - a caller outside its client's allow_ips is refused (403);
//   - a request naming an end user in a user header (any client's
//     user_header, or DefaultUserHeader) is refused (403) unless it comes
//     from a trusted client whose own user_header is that header. Refusing
//     rather than ignoring makes a misconfigured app fail loudly instead of
//     silently attributing every user's usage to one bucket;
//   - JWT callers are named by the token's sub and may not send a user header.
//
// Error messages never contain the presented key or token.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/moat-gateway/moat/host/internal/fault"
)

// DefaultUserHeader is always treated as a user header, so an untrusted
// client sending it is refused even when no client configures it.
const DefaultUserHeader = "X-Moat-User"

// maxCredentialLen bounds a presented key or token.
const maxCredentialLen = 8192

// Refusals are *fault.Error of kind fault.Unauthenticated (no valid
// credential), fault.Forbidden (a known caller that may not do this) or
// fault.InvalidRequest (a valid credential with a malformed user id). Their
// message is safe to show the caller: it never holds the credential.

// Decider is how the audit record names authentication when it refuses
// (fault.Error.By).
const Decider = "auth"

// refusal is a refusal of kind k decided by authentication.
func refusal(k fault.Kind, format string, args ...any) *fault.Error {
	e := fault.New(k, format, args...)
	e.By = Decider
	return e
}

func unauthorized(format string, args ...any) *fault.Error {
	return refusal(fault.Unauthenticated, format, args...)
}

func forbidden(format string, args ...any) *fault.Error {
	return refusal(fault.Forbidden, format, args...)
}

func badRequest(format string, args ...any) *fault.Error {
	return refusal(fault.InvalidRequest, format, args...)
}

// Options are what an Authenticator checks credentials against. The zero
// value accepts no one: no client, and JWTs off.
type Options struct {
	// Clients are the clients that may call, with distinct non-empty ids.
	Clients []Client
	// JWT, when set, accepts end-user JWTs in Authorization: Bearer; nil
	// refuses them (a bearer token must then be a client key).
	JWT *JWT
}

// Client is what auth knows of one client. The zero value beyond ID is a
// client with no key, callable from any address, that may not name end
// users and allows no browser origin.
type Client struct {
	// ID names the client; required and unique.
	ID string
	// Keys are the client's keys by hash; none means no key reaches it
	// (a JWT-only client).
	Keys []Key
	// AllowIPs are the networks callers must come from; empty allows any
	// address.
	AllowIPs []netip.Prefix
	// Trusted lets the client name end users with UserHeader.
	Trusted bool
	// UserHeader is the header a trusted client names end users with; ""
	// names none.
	UserHeader string
	// CORSOrigins are the browser origins allowed to call as this client,
	// compared exactly after lower-casing; empty allows none.
	CORSOrigins []string
}

// Key is one key of a client. The zero value beyond SHA256 is a key that
// never expires and is not revoked.
type Key struct {
	// SHA256 is the hex SHA-256 of the key (64 hex characters).
	SHA256 string
	// Expires is when the key stops working; zero: never.
	Expires time.Time
	// Revoked refuses the key.
	Revoked bool
}

// Identity is who a request comes from.
type Identity struct {
	// ClientID is the calling client's id; never "" on success.
	ClientID string
	// User is the end user: from a trusted client's user header, or a JWT's
	// sub. "" when the request names none.
	User string
	// Via is "key" (a moat client key) or "jwt".
	Via string
	// KeyHash is the first 8 hex characters of the SHA-256 of the presented
	// key or token, for logs.
	KeyHash string
}

// Via values.
const (
	ViaKey = "key"
	ViaJWT = "jwt"
)

type keyEntry struct {
	hash    [32]byte
	client  *Client
	expires time.Time // zero: never
	revoked bool
}

// Authenticator checks credentials against an immutable set of clients. It
// is safe for concurrent use; build a new one when the config changes.
type Authenticator struct {
	keys        map[[32]byte]keyEntry
	clients     map[string]*Client
	userHeaders []string // canonical header names
	jwt         *jwtVerifier
	jwtClient   *Client
	now         func() time.Time
}

// New builds an Authenticator from o. It reads JWT key material (secret
// from the environment or a file, PEM or JWKS file) when o.JWT is set.
func New(o Options) (*Authenticator, error) {
	return newAuthenticator(o, os.Getenv, time.Now)
}

func newAuthenticator(o Options, getenv func(string) string, now func() time.Time) (*Authenticator, error) {
	a := &Authenticator{
		keys:    map[[32]byte]keyEntry{},
		clients: map[string]*Client{},
		now:     now,
	}
	hdrs := map[string]bool{DefaultUserHeader: true}
	for i := range o.Clients {
		cl := o.Clients[i] // copy: the caller's slice may change
		// Canonical once here, not on every request.
		cl.UserHeader = http.CanonicalHeaderKey(cl.UserHeader)
		if cl.ID == "" {
			return nil, fmt.Errorf("client without an id")
		}
		if a.clients[cl.ID] != nil {
			return nil, fmt.Errorf("client %q defined twice", cl.ID)
		}
		a.clients[cl.ID] = &cl
		for _, k := range cl.Keys {
			if err := a.addKey(&cl, k.SHA256, k.Expires, k.Revoked); err != nil {
				return nil, err
			}
		}
		if cl.UserHeader != "" {
			hdrs[cl.UserHeader] = true
		}
	}
	for h := range hdrs {
		a.userHeaders = append(a.userHeaders, h)
	}
	if o.JWT != nil {
		a.jwtClient = a.clients[o.JWT.Client]
		if a.jwtClient == nil {
			return nil, fmt.Errorf("jwt.client %q names no client", o.JWT.Client)
		}
		v, err := newJWTVerifier(*o.JWT, getenv, now)
		if err != nil {
			return nil, fmt.Errorf("setting up jwt: %w", err)
		}
		a.jwt = v
	}
	return a, nil
}

func (a *Authenticator) addKey(cl *Client, h string, expires time.Time, revoked bool) error {
	if h == "" {
		return nil
	}
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != sha256.Size {
		return fmt.Errorf("client %q: key hash must be 64 hex characters", cl.ID)
	}
	var k [32]byte
	copy(k[:], b)
	if prev, ok := a.keys[k]; ok {
		if prev.client != cl {
			return fmt.Errorf("client %q shares a key hash with client %q", cl.ID, prev.client.ID)
		}
		// The same hash listed twice for one client: the stricter entry wins.
		revoked = revoked || prev.revoked
		if expires.IsZero() || (!prev.expires.IsZero() && prev.expires.Before(expires)) {
			expires = prev.expires
		}
	}
	a.keys[k] = keyEntry{hash: k, client: cl, expires: expires, revoked: revoked}
	return nil
}

// Authenticate finds who sent r. remoteIP is the caller's address as the
// server determined it (after trusted-proxy handling). On error the result
// is a *fault.Error; the returned Identity then still names the client and key
// hash when the key was recognized (for logs and alerts), and is otherwise
// zero.
func (a *Authenticator) Authenticate(r *http.Request, remoteIP netip.Addr) (Identity, error) {
	tok, viaBearer, aerr := credential(r.Header)
	if aerr != nil {
		return Identity{}, aerr
	}
	var id Identity
	switch {
	case strings.HasPrefix(tok, KeyPrefix):
		var err *fault.Error
		id, err = a.byKey(tok)
		if err != nil {
			return id, err
		}
	case viaBearer && a.jwt != nil:
		sum := sha256.Sum256([]byte(tok))
		sub, err := a.jwt.verify(tok)
		if err != nil {
			return Identity{}, unauthorized("invalid token: %s", err.Error())
		}
		id = Identity{ClientID: a.jwtClient.ID, User: sub, Via: ViaJWT, KeyHash: hex.EncodeToString(sum[:4])}
		if err := CheckUserID("the token's sub", sub); err != nil {
			return id, err
		}
	case strings.HasPrefix(tok, "sk-ant-"):
		return Identity{}, unauthorized("invalid API key: that is an Anthropic API key; clients authenticate to moat with a moat client key (moat_...) and the Anthropic key stays on the server (rotate the one that was sent)")
	default:
		return Identity{}, unauthorized("invalid API key")
	}
	if err := a.checkIP(a.clients[id.ClientID], remoteIP); err != nil {
		return id, err
	}
	user, err := a.user(r.Header, id)
	if err != nil {
		return id, err
	}
	if id.Via == ViaKey {
		id.User = user
	}
	return id, nil
}

// credential extracts the one credential of a request.
func credential(h http.Header) (tok string, viaBearer bool, err *fault.Error) {
	xs := h.Values("X-Api-Key")
	as := h.Values("Authorization")
	if len(xs) > 1 {
		return "", false, unauthorized("more than one x-api-key header")
	}
	if len(as) > 1 {
		return "", false, unauthorized("more than one Authorization header")
	}
	var bearer string
	if len(as) == 1 {
		scheme, rest, ok := strings.Cut(strings.TrimSpace(as[0]), " ")
		bearer = strings.TrimSpace(rest)
		if !ok || !strings.EqualFold(scheme, "Bearer") || bearer == "" {
			if len(xs) == 1 {
				return "", false, unauthorized("x-api-key and Authorization carry different credentials")
			}
			return "", false, unauthorized("Authorization must be \"Bearer <key>\"")
		}
	}
	switch {
	case len(xs) == 1 && len(as) == 1:
		if xs[0] != bearer {
			return "", false, unauthorized("x-api-key and Authorization carry different credentials")
		}
		tok = bearer
	case len(xs) == 1:
		tok = strings.TrimSpace(xs[0])
	case len(as) == 1:
		tok, viaBearer = bearer, true
	}
	if tok == "" {
		return "", false, unauthorized("missing API key: send it in x-api-key or Authorization: Bearer")
	}
	if len(tok) > maxCredentialLen {
		return "", false, unauthorized("invalid API key")
	}
	return tok, viaBearer, nil
}

func (a *Authenticator) byKey(tok string) (Identity, *fault.Error) {
	sum := sha256.Sum256([]byte(tok))
	e, ok := a.keys[sum]
	if !ok || subtle.ConstantTimeCompare(e.hash[:], sum[:]) != 1 {
		return Identity{}, unauthorized("invalid API key")
	}
	id := Identity{ClientID: e.client.ID, Via: ViaKey, KeyHash: hex.EncodeToString(sum[:4])}
	if e.revoked {
		return id, unauthorized("API key revoked")
	}
	if !e.expires.IsZero() && !a.now().Before(e.expires) {
		return id, unauthorized("API key expired")
	}
	return id, nil
}

func (a *Authenticator) checkIP(cl *Client, ip netip.Addr) *fault.Error {
	nets := cl.AllowIPs
	if len(nets) == 0 {
		return nil
	}
	ip = ip.Unmap()
	if ip.IsValid() {
		for _, p := range nets {
			if p.Contains(ip) {
				return nil
			}
		}
	}
	return forbidden("client %q may not call from this address", cl.ID)
}

// user returns the end user a trusted client names in its user header, and
// refuses a user header anyone else sends.
func (a *Authenticator) user(h http.Header, id Identity) (string, *fault.Error) {
	own := ""
	if cl := a.clients[id.ClientID]; id.Via == ViaKey && cl.Trusted && cl.UserHeader != "" {
		own = cl.UserHeader
	}
	for _, name := range a.userHeaders {
		if _, present := h[name]; !present || name == own {
			continue
		}
		if id.Via == ViaJWT {
			return "", forbidden("header %s is not allowed with a JWT: the token's sub names the user", name)
		}
		return "", forbidden("client %q may not name end users with header %s (only a trusted client with user_header = %q may)", id.ClientID, name, name)
	}
	if own == "" {
		return "", nil
	}
	vs := h.Values(own)
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", badRequest("more than one %s header", own)
	}
	u := vs[0]
	if err := CheckUserID("header "+own, u); err != nil {
		return "", err
	}
	return u, nil
}
