package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
)

// maxJWKSBytes bounds a JWKS document.
const maxJWKSBytes = 1 << 20

type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseJWKS reads the signature-verification keys of a JWKS document (RFC
// 7517), by kid: RSA keys ("kty": "RSA", n and e) and P-256 EC keys ("kty":
// "EC", x and y). Keys for encryption ("use": "enc") are left out; a key of
// another type or a malformed key is an error, as is a repeated kid.
func parseJWKS(b []byte) (map[string]any, error) {
	if len(b) > maxJWKSBytes {
		return nil, fmt.Errorf("JWKS larger than %d bytes", maxJWKSBytes)
	}
	var doc struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("decoding JWKS: %w", err)
	}
	if doc.Keys == nil {
		return nil, errors.New("JWKS has no \"keys\" array")
	}
	out := map[string]any{}
	for i, k := range doc.Keys {
		if k.Use == "enc" {
			continue
		}
		var (
			key any
			err error
		)
		switch k.Kty {
		case "RSA":
			key, err = rsaFromJWK(k)
		case "EC":
			key, err = ecFromJWK(k)
		default:
			err = fmt.Errorf("unsupported kty %q (RSA or EC)", k.Kty)
		}
		if err != nil {
			return nil, fmt.Errorf("JWKS key %d (kid %q): %w", i, k.Kid, err)
		}
		if _, dup := out[k.Kid]; dup {
			return nil, fmt.Errorf("JWKS key %d: kid %q repeated", i, k.Kid)
		}
		out[k.Kid] = key
	}
	if len(out) == 0 {
		return nil, errors.New("JWKS holds no signature key")
	}
	return out, nil
}

func b64(field, s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("field %q is not base64url: %w", field, err)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("field %q is empty", field)
	}
	return b, nil
}

func rsaFromJWK(k jwk) (*rsa.PublicKey, error) {
	if k.Alg != "" && k.Alg != "RS256" {
		return nil, fmt.Errorf("RSA key for alg %q; only RS256 is supported", k.Alg)
	}
	nb, err := b64("n", k.N)
	if err != nil {
		return nil, err
	}
	eb, err := b64("e", k.E)
	if err != nil {
		return nil, err
	}
	if len(eb) > 4 {
		return nil, errors.New("exponent too large")
	}
	e := new(big.Int).SetBytes(eb)
	if e.Int64() < 3 || e.Int64()%2 == 0 {
		return nil, errors.New("invalid exponent")
	}
	n := new(big.Int).SetBytes(nb)
	if n.BitLen() < minRSABits {
		return nil, fmt.Errorf("RSA key of %d bits; at least %d required", n.BitLen(), minRSABits)
	}
	return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
}

func ecFromJWK(k jwk) (*ecdsa.PublicKey, error) {
	if k.Crv != "P-256" {
		return nil, fmt.Errorf("EC curve %q; only P-256 (ES256) is supported", k.Crv)
	}
	if k.Alg != "" && k.Alg != "ES256" {
		return nil, fmt.Errorf("EC key for alg %q; only ES256 is supported", k.Alg)
	}
	x, err := b64("x", k.X)
	if err != nil {
		return nil, err
	}
	y, err := b64("y", k.Y)
	if err != nil {
		return nil, err
	}
	if len(x) != 32 || len(y) != 32 {
		return nil, errors.New("P-256 coordinates must be 32 bytes each")
	}
	point := append(append([]byte{4}, x...), y...)
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
	if err != nil {
		return nil, fmt.Errorf("invalid P-256 point: %w", err)
	}
	return pub, nil
}
