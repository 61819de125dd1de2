package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
)

// KeyPrefix starts every moat client key. A bearer token without it is not a
// moat key (and is tried as a JWT when [jwt] is enabled).
const KeyPrefix = "moat_"

// keyBodyLen is the base62 length of 32 random bytes: 62^43 > 2^256.
const keyBodyLen = 43

// NewKey returns a fresh client key (KeyPrefix + base62 of 32 bytes from
// crypto/rand) and the hex SHA-256 of it, the only form config stores.
func NewKey() (key, sha256hex string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("reading random bytes for a client key: %w", err)
	}
	body := new(big.Int).SetBytes(b[:]).Text(62)
	if len(body) < keyBodyLen {
		body = strings.Repeat("0", keyBodyLen-len(body)) + body
	}
	key = KeyPrefix + body
	return key, HashKey(key), nil
}

// HashKey returns the hex SHA-256 of a client key, as stored in key_sha256.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}
