package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// minHMACSecret is the shortest HS256 secret accepted (RFC 7518 3.2: a key
// at least as long as the hash output).
const minHMACSecret = 32

// minRSABits is the smallest RSA modulus accepted.
const minRSABits = 2048

// JWT says how end-user tokens are checked. The zero value beyond Client
// accepts no token: Algorithms is empty and no key is set (New refuses it).
type JWT struct {
	// Client is the id of the client JWT callers are attributed to.
	Client string
	// Algorithms are the algorithms accepted ("HS256", "RS256", "ES256"),
	// each only with a key of its type; empty accepts none.
	Algorithms []string
	// SecretEnv names the environment variable holding the HS256 secret;
	// SecretFile is a file holding it (SecretEnv wins). "": no secret.
	SecretEnv  string
	SecretFile string
	// PublicKeyFile is a PEM public key and JWKSFile a JWKS document, for
	// RS256 and ES256. "": none.
	PublicKeyFile string
	JWKSFile      string
	// Issuer and Audience, when set, must match the token's iss and aud.
	Issuer   string
	Audience string
	// Leeway is the clock skew allowed on exp and nbf; zero allows none.
	Leeway time.Duration
}

// jwtVerifier checks end-user tokens. Each algorithm is pinned to one key
// type: HS256 only ever gets the HMAC secret, RS256 an *rsa.PublicKey,
// ES256 a P-256 *ecdsa.PublicKey, so a token cannot pick a key by choosing
// its alg ("none" and algorithm confusion are refused).
type jwtVerifier struct {
	parser *jwt.Parser
	hmac   []byte
	rsa    map[string]*rsa.PublicKey   // by kid; "" for a PEM file key
	ec     map[string]*ecdsa.PublicKey // by kid; "" for a PEM file key
}

// jwtError is a verification failure with a fixed, token-free message.
type jwtError struct {
	msg string
	err error
}

func (e *jwtError) Error() string { return e.msg }
func (e *jwtError) Unwrap() error { return e.err }

func newJWTVerifier(j JWT, getenv func(string) string, now func() time.Time) (*jwtVerifier, error) {
	v := &jwtVerifier{rsa: map[string]*rsa.PublicKey{}, ec: map[string]*ecdsa.PublicKey{}}
	switch {
	case j.SecretEnv != "":
		s := strings.TrimSpace(getenv(j.SecretEnv))
		if s == "" {
			return nil, fmt.Errorf("jwt.secret_env: environment variable %s is empty or unset", j.SecretEnv)
		}
		v.hmac = []byte(s)
	case j.SecretFile != "":
		b, err := os.ReadFile(j.SecretFile)
		if err != nil {
			return nil, fmt.Errorf("reading jwt.secret_file: %w", err)
		}
		v.hmac = []byte(strings.TrimSpace(string(b)))
	}
	if v.hmac != nil && len(v.hmac) < minHMACSecret {
		return nil, fmt.Errorf("jwt secret is %d bytes; HS256 needs at least %d", len(v.hmac), minHMACSecret)
	}
	if j.PublicKeyFile != "" {
		b, err := os.ReadFile(j.PublicKeyFile)
		if err != nil {
			return nil, fmt.Errorf("reading jwt.public_key_file: %w", err)
		}
		k, err := parsePEMPublicKey(b)
		if err != nil {
			return nil, fmt.Errorf("jwt.public_key_file %s: %w", j.PublicKeyFile, err)
		}
		if err := v.add("", k); err != nil {
			return nil, fmt.Errorf("jwt.public_key_file %s: %w", j.PublicKeyFile, err)
		}
	}
	if j.JWKSFile != "" {
		b, err := os.ReadFile(j.JWKSFile)
		if err != nil {
			return nil, fmt.Errorf("reading jwt.jwks_file: %w", err)
		}
		keys, err := parseJWKS(b)
		if err != nil {
			return nil, fmt.Errorf("jwt.jwks_file %s: %w", j.JWKSFile, err)
		}
		for kid, k := range keys {
			if err := v.add(kid, k); err != nil {
				return nil, fmt.Errorf("jwt.jwks_file %s: key %q: %w", j.JWKSFile, kid, err)
			}
		}
	}
	var methods []string
	for _, alg := range j.Algorithms {
		switch {
		case alg == "HS256" && v.hmac != nil,
			alg == "RS256" && len(v.rsa) > 0,
			alg == "ES256" && len(v.ec) > 0:
			methods = append(methods, alg)
		}
	}
	if len(methods) == 0 {
		return nil, fmt.Errorf("no key for any allowed algorithm %v (HS256 needs a secret, RS256 an RSA key, ES256 a P-256 key)", j.Algorithms)
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(j.Leeway),
		jwt.WithTimeFunc(now),
		jwt.WithStrictDecoding(),
	}
	if j.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(j.Issuer))
	}
	if j.Audience != "" {
		opts = append(opts, jwt.WithAudience(j.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

func (v *jwtVerifier) add(kid string, k any) error {
	switch k := k.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return fmt.Errorf("RSA key of %d bits; at least %d required", k.N.BitLen(), minRSABits)
		}
		v.rsa[kid] = k
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return errors.New("EC key is not on P-256 (ES256)")
		}
		v.ec[kid] = k
	default:
		return fmt.Errorf("unsupported key type %T (RSA or P-256 EC)", k)
	}
	return nil
}

func parsePEMPublicKey(b []byte) (any, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	switch block.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing public key: %w", err)
		}
		return k, nil
	case "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing RSA public key: %w", err)
		}
		return k, nil
	default:
		return nil, fmt.Errorf("PEM block %q is not a public key", block.Type)
	}
}

// verify checks a token and returns its sub. The sub's form is checked by
// the caller with CheckUserID, the one validation for user ids.
func (v *jwtVerifier) verify(token string) (string, error) {
	if len(token) > maxCredentialLen {
		return "", &jwtError{"token too large", jwt.ErrTokenMalformed}
	}
	var claims jwt.RegisteredClaims
	_, err := v.parser.ParseWithClaims(token, &claims, v.key)
	if err != nil {
		return "", classify(err)
	}
	if claims.Subject == "" {
		return "", &jwtError{"token has no sub", jwt.ErrTokenRequiredClaimMissing}
	}
	return claims.Subject, nil
}

// key selects the verification key for a token by its alg and kid, checking
// the method's type as well as its name.
func (v *jwtVerifier) key(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	switch m := t.Method.(type) {
	case *jwt.SigningMethodHMAC:
		if m != jwt.SigningMethodHS256 || v.hmac == nil {
			return nil, errors.New("no key for this algorithm")
		}
		return v.hmac, nil
	case *jwt.SigningMethodRSA:
		if m != jwt.SigningMethodRS256 {
			return nil, errors.New("no key for this algorithm")
		}
		return pick(v.rsa, kid)
	case *jwt.SigningMethodECDSA:
		if m != jwt.SigningMethodES256 {
			return nil, errors.New("no key for this algorithm")
		}
		return pick(v.ec, kid)
	}
	return nil, errors.New("no key for this algorithm")
}

var errUnknownKid = errors.New("unknown kid")

func pick[K any](keys map[string]K, kid string) (any, error) {
	if k, ok := keys[kid]; ok {
		return k, nil
	}
	if k, ok := keys[""]; ok && len(keys) == 1 {
		// A key from a PEM file has no kid: it verifies whatever kid the
		// token names.
		return k, nil
	}
	if kid == "" && len(keys) == 1 {
		for _, k := range keys {
			return k, nil
		}
	}
	if kid == "" {
		return nil, errors.New("token has no kid and several keys could sign it")
	}
	return nil, errUnknownKid
}

// classify maps a jwt error to a fixed message.
func classify(err error) error {
	for _, c := range []struct {
		target error
		msg    string
	}{
		{jwt.ErrTokenMalformed, "malformed token"},
		{jwt.ErrTokenSignatureInvalid, "bad signature or disallowed algorithm"},
		{jwt.ErrTokenExpired, "token expired"},
		{jwt.ErrTokenNotValidYet, "token not valid yet"},
		{jwt.ErrTokenUsedBeforeIssued, "token used before issued"},
		{jwt.ErrTokenInvalidIssuer, "wrong issuer"},
		{jwt.ErrTokenInvalidAudience, "wrong audience"},
		{jwt.ErrTokenRequiredClaimMissing, "token lacks a required claim (exp)"},
		{errUnknownKid, "unknown kid"},
		{jwt.ErrTokenUnverifiable, "token unverifiable: no key for its algorithm"},
	} {
		if errors.Is(err, c.target) {
			return &jwtError{c.msg, err}
		}
	}
	return &jwtError{"invalid token", err}
}
