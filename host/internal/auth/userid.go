package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/moat-gateway/moat/host/internal/fault"
)

// MaxUserIDLen bounds an end-user id, in bytes, whatever its source.
const MaxUserIDLen = 256

// CheckUserID is the one validation of an end-user id, for every source
// that names one: a trusted client's user header, metadata.user_id, a JWT's
// sub. source names the field in the refusal. An id is 1 to MaxUserIDLen
// bytes of valid UTF-8, printable characters only (unicode.IsPrint: no
// control, format, bidi or zero-width characters, no line breaks, and no
// space other than U+0020), with no leading or trailing space. The refusal
// is a 400 invalid_request_error that never echoes the id.
func CheckUserID(source, id string) *fault.Error {
	if !ValidUserID(id) {
		return badRequest("%s must be 1 to %d printable characters (no control, format or line-break characters, no leading or trailing space)", source, MaxUserIDLen)
	}
	return nil
}

// ValidUserID reports whether id passes CheckUserID.
func ValidUserID(id string) bool {
	if id == "" || len(id) > MaxUserIDLen || !utf8.ValidString(id) {
		return false
	}
	if id[0] == ' ' || id[len(id)-1] == ' ' {
		return false
	}
	return strings.IndexFunc(id, func(r rune) bool { return !unicode.IsPrint(r) }) < 0
}

// CredentialHash identifies the credential a request presents (x-api-key or
// Authorization: Bearer) without holding it: the first 16 hex characters of
// its SHA-256, or "" when the request presents none. Failed
// authentications are counted under it as well as under the address.
func CredentialHash(h http.Header) string {
	tok := ""
	if v := h.Values("X-Api-Key"); len(v) > 0 {
		tok = strings.TrimSpace(v[0])
	} else if v := h.Values("Authorization"); len(v) > 0 {
		_, rest, _ := strings.Cut(strings.TrimSpace(v[0]), " ")
		tok = strings.TrimSpace(rest)
	}
	if tok == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:8])
}
