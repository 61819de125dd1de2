package auth

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzParseToken feeds arbitrary tokens to a verifier holding an HMAC
// secret, an RSA key and an EC key: it must never panic, and whatever it
// accepts must carry a sub.
func FuzzParseToken(f *testing.F) {
	k := testJWTKeys(f)
	v, err := newJWTVerifier(baseJWT(func(j *JWT) {
		j.SecretEnv = "S"
		j.JWKSFile = k.jwksPath
	}), env(map[string]string{"S": testSecret}), fixedNow)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sign(f, jwt.SigningMethodHS256, []byte(testSecret), "", claims(nil)))
	f.Add(sign(f, jwt.SigningMethodRS256, k.rsa, "rsa1", claims(nil)))
	f.Add(sign(f, jwt.SigningMethodES256, k.ec, "ec1", claims(nil)))
	f.Add(sign(f, jwt.SigningMethodHS256, k.pemBytes, "rsa1", claims(nil)))
	f.Fuzz(func(t *testing.T, tok string) {
		sub, err := v.verify(tok)
		if err == nil && sub == "" {
			t.Fatalf("accepted a token without sub: %q", tok)
		}
	})
}

// FuzzParseJWKS feeds arbitrary documents to the JWKS parser: it must never
// panic, and every key it returns must be usable for RS256 or ES256.
func FuzzParseJWKS(f *testing.F) {
	k := testJWTKeys(f)
	f.Add(jwksDoc(map[string]any{"rsa1": &k.rsa.PublicKey, "ec1": &k.ec.PublicKey}))
	f.Fuzz(func(t *testing.T, doc []byte) {
		keys, err := parseJWKS(doc)
		if err != nil {
			return
		}
		v := &jwtVerifier{rsa: map[string]*rsa.PublicKey{}, ec: map[string]*ecdsa.PublicKey{}}
		for kid, key := range keys {
			if err := v.add(kid, key); err != nil {
				t.Fatalf("parseJWKS returned an unusable key %q: %v", kid, err)
			}
		}
	})
}
