package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/moat-gateway/moat/host/internal/fault"
)

const testSecret = "test-only-hmac-secret-0123456789abcdef"

type jwtKeys struct {
	rsa, rsaOther *rsa.PrivateKey
	ec            *ecdsa.PrivateKey
	pemPath       string // PEM of rsa's public key
	pemBytes      []byte
	jwksPath      string // rsa as "rsa1", ec as "ec1"
}

var (
	jwtKeysOnce sync.Once
	sharedKeys  jwtKeys
	sharedDir   string
)

// testJWTKeys generates the keys once per test binary and writes the PEM
// and JWKS files to a directory removed by TestMain-less cleanup (os temp).
func testJWTKeys(t testing.TB) jwtKeys {
	t.Helper()
	jwtKeysOnce.Do(func() {
		var err error
		k := &sharedKeys
		if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if k.rsaOther, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if sharedDir, err = os.MkdirTemp("", "moat-jwt-test"); err != nil {
			panic(err)
		}
		der, err := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
		if err != nil {
			panic(err)
		}
		k.pemBytes = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		k.pemPath = filepath.Join(sharedDir, "pub.pem")
		if err := os.WriteFile(k.pemPath, k.pemBytes, 0o600); err != nil {
			panic(err)
		}
		k.jwksPath = filepath.Join(sharedDir, "jwks.json")
		if err := os.WriteFile(k.jwksPath, jwksDoc(map[string]any{"rsa1": &k.rsa.PublicKey, "ec1": &k.ec.PublicKey}), 0o600); err != nil {
			panic(err)
		}
	})
	return sharedKeys
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedDir != "" {
		os.RemoveAll(sharedDir)
	}
	os.Exit(code)
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func jwksDoc(keys map[string]any) []byte {
	var list []map[string]string
	for kid, k := range keys {
		switch k := k.(type) {
		case *rsa.PublicKey:
			list = append(list, map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64u(k.N.Bytes()), "e": b64u(big.NewInt(int64(k.E)).Bytes())})
		case *ecdsa.PublicKey:
			b, err := k.Bytes()
			if err != nil {
				panic(err)
			}
			list = append(list, map[string]string{"kty": "EC", "kid": kid, "crv": "P-256", "x": b64u(b[1:33]), "y": b64u(b[33:])})
		}
	}
	out, err := json.Marshal(map[string]any{"keys": list})
	if err != nil {
		panic(err)
	}
	return out
}

func sign(t testing.TB, m jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claims(mod func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{
		"sub": "user-42",
		"iss": "https://issuer.example",
		"aud": "moat",
		"exp": testNow.Add(time.Hour).Unix(),
		"iat": testNow.Add(-time.Minute).Unix(),
	}
	if mod != nil {
		mod(c)
	}
	return c
}

func baseJWT(mod func(*JWT)) JWT {
	j := JWT{
		Client:     "spa",
		Algorithms: []string{"HS256", "RS256", "ES256"},
		Issuer:     "https://issuer.example",
		Audience:   "moat",
		Leeway:     30 * time.Second,
	}
	if mod != nil {
		mod(&j)
	}
	return j
}

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestJWTVerify(t *testing.T) {
	k := testJWTKeys(t)
	secretEnv := env(map[string]string{"JWT_SECRET": testSecret})
	hs := baseJWT(func(j *JWT) { j.SecretEnv = "JWT_SECRET" })
	pemOnly := baseJWT(func(j *JWT) { j.PublicKeyFile = k.pemPath })
	jwks := baseJWT(func(j *JWT) { j.JWKSFile = k.jwksPath })
	both := baseJWT(func(j *JWT) { j.SecretEnv = "JWT_SECRET"; j.PublicKeyFile = k.pemPath })

	none := func() string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}()

	cases := []struct {
		name  string
		cfg   JWT
		token string
		want  error // nil: valid
	}{
		{"hs256 valid", hs, sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claims(nil)), nil},
		{"rs256 pem valid", pemOnly, sign(t, jwt.SigningMethodRS256, k.rsa, "", claims(nil)), nil},
		{"rs256 pem ignores kid", pemOnly, sign(t, jwt.SigningMethodRS256, k.rsa, "whatever", claims(nil)), nil},
		{"rs256 jwks valid", jwks, sign(t, jwt.SigningMethodRS256, k.rsa, "rsa1", claims(nil)), nil},
		{"es256 jwks valid", jwks, sign(t, jwt.SigningMethodES256, k.ec, "ec1", claims(nil)), nil},
		{"es256 jwks no kid, one EC key", jwks, sign(t, jwt.SigningMethodES256, k.ec, "", claims(nil)), nil},
		{"expired", hs, sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claims(func(c jwt.MapClaims) { c["exp"] = testNow.Add(-time.Hour).Unix() })), jwt.ErrTokenExpired},
		{"expired within leeway", hs, sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claims(func(c jwt.MapClaims) { c["exp"] = testNow.Add(-10 * time.Second).Unix() })), nil},
		{"no exp", hs, sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claims(func(c jwt.MapClaims) { delete(c, "exp") })), jwt.ErrTokenRequiredClaimMissing},
		{"not yet valid", hs, sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claims(func(c jwt.MapClaims) { c["nbf"] = testNow.Add(time.Hour).Unix() })), jwt.ErrTokenNotValidYet},
		{"nbf within leeway", hs, sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claims(func(c jwt.MapClaims) { c["nbf"] = testNow.Add(10 * time.Second).Unix() })), nil},
		{"wrong issuer", hs, sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claims(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" })), jwt.ErrTokenInvalidIssuer},
		{"no issuer", hs, sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claims(func(c jwt.MapClaims) { delete(c, "iss") })), jwt.ErrTokenRequiredClaimMissing},
		{"wrong audience", hs, sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claims(func(c jwt.MapClaims) { c["aud"] = "other" })), jwt.ErrTokenInvalidAudience},
		{"audience list containing ours", hs, sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claims(func(c jwt.MapClaims) { c["aud"] = []string{"other", "moat"} })), nil},
		{"alg none", hs, none, jwt.ErrTokenSignatureInvalid},
		{"alg none vs rsa", pemOnly, none, jwt.ErrTokenSignatureInvalid},
		{"hs/rs confusion, rsa only", pemOnly, sign(t, jwt.SigningMethodHS256, k.pemBytes, "", claims(nil)), jwt.ErrTokenSignatureInvalid},
		{"hs/rs confusion, secret and rsa", both, sign(t, jwt.SigningMethodHS256, k.pemBytes, "", claims(nil)), jwt.ErrTokenSignatureInvalid},
		{"hs/rs confusion via jwks", jwks, sign(t, jwt.SigningMethodHS256, k.pemBytes, "rsa1", claims(nil)), jwt.ErrTokenSignatureInvalid},
		{"rs384 not allowed", pemOnly, sign(t, jwt.SigningMethodRS384, k.rsa, "", claims(nil)), jwt.ErrTokenSignatureInvalid},
		{"es256 against rsa-only", pemOnly, sign(t, jwt.SigningMethodES256, k.ec, "", claims(nil)), jwt.ErrTokenSignatureInvalid},
		{"bad signature rsa", pemOnly, sign(t, jwt.SigningMethodRS256, k.rsaOther, "", claims(nil)), jwt.ErrTokenSignatureInvalid},
		{"bad signature hmac", hs, sign(t, jwt.SigningMethodHS256, []byte(testSecret+"x"), "", claims(nil)), jwt.ErrTokenSignatureInvalid},
		{"jwks kid miss", jwks, sign(t, jwt.SigningMethodRS256, k.rsa, "rsa9", claims(nil)), errUnknownKid},
		{"jwks kid of other type", jwks, sign(t, jwt.SigningMethodRS256, k.rsa, "ec1", claims(nil)), errUnknownKid},
		{"missing sub", hs, sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claims(func(c jwt.MapClaims) { delete(c, "sub") })), jwt.ErrTokenRequiredClaimMissing},
		{"empty sub", hs, sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claims(func(c jwt.MapClaims) { c["sub"] = "" })), jwt.ErrTokenRequiredClaimMissing},
		{"malformed two parts", hs, "abc.def", jwt.ErrTokenMalformed},
		{"malformed garbage", hs, "not a token", jwt.ErrTokenMalformed},
		{"malformed json", hs, b64u([]byte("{")) + "." + b64u([]byte("{}")) + ".sig", jwt.ErrTokenMalformed},
		{"empty", hs, "", jwt.ErrTokenMalformed},
		{"oversized", hs, strings.Repeat("a", maxCredentialLen+1), jwt.ErrTokenMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := newJWTVerifier(tc.cfg, secretEnv, fixedNow)
			if err != nil {
				t.Fatal(err)
			}
			sub, err := v.verify(tc.token)
			if tc.want == nil {
				if err != nil || sub != "user-42" {
					t.Fatalf("verify = %q, %v; want user-42", sub, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("verify accepted (sub %q), want %v", sub, tc.want)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("verify = %v (%v), want %v", err, errors.Unwrap(err), tc.want)
			}
			if len(tc.token) > 20 && strings.Contains(err.Error(), tc.token[len(tc.token)-20:]) {
				t.Fatalf("error %q contains the token", err)
			}
		})
	}
}

func TestJWTSetupErrors(t *testing.T) {
	k := testJWTKeys(t)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallDER, _ := x509.MarshalPKIXPublicKey(&small.PublicKey)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384DER, _ := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	cases := []struct {
		name string
		mod  func(*JWT)
		want string
	}{
		{"short secret", func(j *JWT) { j.SecretEnv = "SHORT" }, "at least 32"},
		{"unset secret", func(j *JWT) { j.SecretEnv = "UNSET" }, "empty or unset"},
		{"missing secret file", func(j *JWT) { j.SecretFile = filepath.Join(dir, "nope") }, "secret_file"},
		{"missing pem", func(j *JWT) { j.PublicKeyFile = filepath.Join(dir, "nope") }, "public_key_file"},
		{"not pem", func(j *JWT) { j.PublicKeyFile = write("x.pem", []byte("hello")) }, "no PEM block"},
		{"private key pem", func(j *JWT) {
			j.PublicKeyFile = write("priv.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}))
		}, "not a public key"},
		{"small rsa", func(j *JWT) {
			j.PublicKeyFile = write("small.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: smallDER}))
		}, "at least 2048"},
		{"p384", func(j *JWT) {
			j.PublicKeyFile = write("p384.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: p384DER}))
		}, "P-256"},
		{"bad jwks", func(j *JWT) { j.JWKSFile = write("bad.json", []byte(`{"keys":[{"kty":"oct","k":"AA"}]}`)) }, "unsupported kty"},
		{"alg without key", func(j *JWT) { j.PublicKeyFile = k.pemPath; j.Algorithms = []string{"HS256"} }, "no key for any allowed algorithm"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newJWTVerifier(baseJWT(tc.mod), env(map[string]string{"SHORT": "short"}), fixedNow)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("newJWTVerifier = %v, want error containing %q", err, tc.want)
			}
		})
	}
}

func TestParseJWKS(t *testing.T) {
	k := testJWTKeys(t)
	rsaN := b64u(k.rsa.N.Bytes())
	ecb, _ := k.ec.PublicKey.Bytes()
	x, y := b64u(ecb[1:33]), b64u(ecb[33:])
	offCurve := make([]byte, 32)
	offCurve[31] = 5
	cases := []struct {
		name string
		doc  string
		kids []string
		want string // error substring; "" = ok
	}{
		{"rsa and ec", `{"keys":[{"kty":"RSA","kid":"r","n":"` + rsaN + `","e":"AQAB"},{"kty":"EC","kid":"e","crv":"P-256","x":"` + x + `","y":"` + y + `"}]}`, []string{"r", "e"}, ""},
		{"enc key skipped", `{"keys":[{"kty":"RSA","kid":"r","use":"enc","n":"` + rsaN + `","e":"AQAB"},{"kty":"EC","kid":"e","crv":"P-256","x":"` + x + `","y":"` + y + `"}]}`, []string{"e"}, ""},
		{"only enc", `{"keys":[{"kty":"RSA","kid":"r","use":"enc","n":"` + rsaN + `","e":"AQAB"}]}`, nil, "no signature key"},
		{"not json", `{`, nil, "decoding JWKS"},
		{"no keys", `{}`, nil, "no \"keys\""},
		{"bad base64", `{"keys":[{"kty":"RSA","kid":"r","n":"!!","e":"AQAB"}]}`, nil, "base64url"},
		{"padded base64", `{"keys":[{"kty":"RSA","kid":"r","n":"` + rsaN + `","e":"AQAB=="}]}`, nil, "base64url"},
		{"small rsa", `{"keys":[{"kty":"RSA","kid":"r","n":"` + b64u(k.rsa.N.Bytes()[:64]) + `","e":"AQAB"}]}`, nil, "at least 2048"},
		{"even exponent", `{"keys":[{"kty":"RSA","kid":"r","n":"` + rsaN + `","e":"AAI"}]}`, nil, "invalid exponent"},
		{"huge exponent", `{"keys":[{"kty":"RSA","kid":"r","n":"` + rsaN + `","e":"AQABAQAB"}]}`, nil, "exponent too large"},
		{"rsa for rs512", `{"keys":[{"kty":"RSA","kid":"r","alg":"RS512","n":"` + rsaN + `","e":"AQAB"}]}`, nil, "only RS256"},
		{"p384 curve", `{"keys":[{"kty":"EC","kid":"e","crv":"P-384","x":"` + x + `","y":"` + y + `"}]}`, nil, "only P-256"},
		{"point off curve", `{"keys":[{"kty":"EC","kid":"e","crv":"P-256","x":"` + x + `","y":"` + b64u(offCurve) + `"}]}`, nil, "invalid P-256 point"},
		{"short coordinate", `{"keys":[{"kty":"EC","kid":"e","crv":"P-256","x":"AQ","y":"` + y + `"}]}`, nil, "32 bytes"},
		{"duplicate kid", `{"keys":[{"kty":"RSA","kid":"r","n":"` + rsaN + `","e":"AQAB"},{"kty":"RSA","kid":"r","n":"` + rsaN + `","e":"AQAB"}]}`, nil, "repeated"},
		{"symmetric", `{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0"}]}`, nil, "unsupported kty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseJWKS([]byte(tc.doc))
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("parseJWKS = %v, want error containing %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.kids) {
				t.Fatalf("got %d keys, want %v", len(got), tc.kids)
			}
			for _, kid := range tc.kids {
				if got[kid] == nil {
					t.Fatalf("kid %q missing", kid)
				}
			}
		})
	}
}

func TestAuthenticateJWT(t *testing.T) {
	k := testJWTKeys(t)
	_, h := mustKey(t)
	o := Options{
		Clients: []Client{
			{ID: "spa", Keys: []Key{{SHA256: h}}, AllowIPs: prefixes(t, "127.0.0.0/8")},
			{ID: "backend", Keys: []Key{{SHA256: HashKey("moat_backend")}}, Trusted: true, UserHeader: "X-End-User"},
		},
		JWT: &JWT{
			Client:     "spa",
			Algorithms: []string{"HS256", "RS256", "ES256"},
			JWKSFile:   k.jwksPath,
			Issuer:     "https://issuer.example",
			Audience:   "moat",
		},
	}
	a, err := newAuthenticator(o, env(nil), fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	good := sign(t, jwt.SigningMethodES256, k.ec, "ec1", claims(nil))
	expired := sign(t, jwt.SigningMethodES256, k.ec, "ec1", claims(func(c jwt.MapClaims) { c["exp"] = testNow.Add(-time.Hour).Unix() }))
	withSub := func(sub string) string {
		return sign(t, jwt.SigningMethodES256, k.ec, "ec1", claims(func(c jwt.MapClaims) { c["sub"] = sub }))
	}
	local := netip.MustParseAddr("127.0.0.1")
	cases := []struct {
		name    string
		headers [][2]string
		ip      netip.Addr
		kind    fault.Kind // the zero kind (Internal): served
	}{
		{"bearer jwt", [][2]string{{"Authorization", "Bearer " + good}}, local, fault.Internal},
		{"sub with newline", [][2]string{{"Authorization", "Bearer " + withSub("user\nadmin")}}, local, fault.InvalidRequest},
		{"sub with NUL", [][2]string{{"Authorization", "Bearer " + withSub("user\x00")}}, local, fault.InvalidRequest},
		{"sub with bidi override", [][2]string{{"Authorization", "Bearer " + withSub("user\u202egnp")}}, local, fault.InvalidRequest},
		{"sub of 257 bytes", [][2]string{{"Authorization", "Bearer " + withSub(strings.Repeat("u", 257))}}, local, fault.InvalidRequest},
		{"jwt in x-api-key is not tried", [][2]string{{"X-Api-Key", good}}, local, fault.Unauthenticated},
		{"expired jwt", [][2]string{{"Authorization", "Bearer " + expired}}, local, fault.Unauthenticated},
		{"jwt outside allowlist", [][2]string{{"Authorization", "Bearer " + good}}, netip.MustParseAddr("192.0.2.1"), fault.Forbidden},
		{"jwt with user header", [][2]string{{"Authorization", "Bearer " + good}, {"X-End-User", "mallory"}}, local, fault.Forbidden},
		{"jwt with default user header", [][2]string{{"Authorization", "Bearer " + good}, {"X-Moat-User", "mallory"}}, local, fault.Forbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/v1/messages", nil)
			for _, h := range tc.headers {
				r.Header.Add(h[0], h[1])
			}
			id, err := a.Authenticate(r, tc.ip)
			if tc.kind == fault.Internal {
				if err != nil {
					t.Fatal(err)
				}
				if id.Via != ViaJWT || id.ClientID != "spa" || id.User != "user-42" || len(id.KeyHash) != 8 {
					t.Fatalf("identity = %+v", id)
				}
				return
			}
			var ae *fault.Error
			if !errors.As(err, &ae) || ae.Kind != tc.kind {
				t.Fatalf("err = %v, want kind %s", err, tc.kind)
			}
			if strings.Contains(ae.Msg, good[len(good)-16:]) || strings.Contains(ae.Msg, expired[len(expired)-16:]) {
				t.Fatalf("message %q contains the token", ae.Msg)
			}
		})
	}
}
