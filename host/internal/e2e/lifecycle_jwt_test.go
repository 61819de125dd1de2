package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/golang-jwt/jwt/v5"
)

const (
	lcIssuer   = "https://idp.example.test"
	lcAudience = "moat-e2e"
)

// lcToken signs claims with HS256 and secret.
func lcToken(t *testing.T, secret string, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func lcClaims(sub string, exp time.Time) jwt.MapClaims {
	return jwt.MapClaims{"sub": sub, "iss": lcIssuer, "aud": lcAudience, "exp": exp.Unix(), "iat": time.Now().Add(-time.Minute).Unix()}
}

// TestJWTEndUsers: end users with an HS256 JWT (secret from the
// environment or from a file) reach Claude through moat as client "app",
// named by the token's sub in the audit trail; a browser-style call with
// only the JWT works with the official SDK; expired, wrong-issuer, alg
// none and wrongly signed tokens get 401.
func TestJWTEndUsers(t *testing.T) {
	secret := "jwt-secret-for-e2e-" + strings.Repeat("x7", 16)
	jwtTOML := func(source string) string {
		return fmt.Sprintf("[jwt]\nenabled = true\nclient = \"app\"\nalgorithms = [\"HS256\"]\n%s\nissuer = %q\naudience = %q\n", source, lcIssuer, lcAudience)
	}
	const origin = "https://spa.example.test"
	sources := []struct {
		name  string
		setup func(t *testing.T) string
	}{
		{"secret_env", func(t *testing.T) string {
			t.Setenv("MOAT_E2E_JWT_SECRET", secret)
			return `secret_env = "MOAT_E2E_JWT_SECRET"`
		}},
		{"secret_file", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "jwt.secret")
			if err := os.WriteFile(p, []byte(secret+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("secret_file = %q", p)
		}},
	}
	for _, src := range sources {
		t.Run(src.name, func(t *testing.T) {
			e := start(t, envOpts{
				client: fmt.Sprintf("cors_origins = [%q]", origin),
				extra:  jwtTOML(src.setup(t)),
			})
			valid := lcToken(t, secret, lcClaims("user-42", time.Now().Add(5*time.Minute)))

			t.Run("SDK with only the JWT", func(t *testing.T) {
				var gotACAO string
				c := anthropic.NewClient(
					option.WithBaseURL(e.url),
					option.WithAuthToken(valid),
					option.WithMaxRetries(0),
					option.WithHeader("Origin", origin),
					option.WithMiddleware(func(req *http.Request, next option.MiddlewareNext) (*http.Response, error) {
						if req.Header.Get("X-Api-Key") != "" || req.Header.Get("Authorization") != "Bearer "+valid {
							return nil, fmt.Errorf("the SDK sent other credentials than the JWT")
						}
						resp, err := next(req)
						if resp != nil {
							gotACAO = resp.Header.Get("Access-Control-Allow-Origin")
						}
						return resp, err
					}),
				)
				msg, err := c.Messages.New(context.Background(), userMsg("hello from a browser"))
				if err != nil {
					t.Fatalf("Messages.New with a JWT: %v", err)
				}
				if len(msg.Content) == 0 || msg.Content[0].Text == "" {
					t.Fatalf("empty reply %+v", msg)
				}
				if gotACAO != origin {
					t.Errorf("Access-Control-Allow-Origin = %q, want %q", gotACAO, origin)
				}
				if up := e.si.Last(); up.APIKey() != e.upKey || strings.Contains(up.Header.Get("Authorization"), valid) {
					t.Errorf("the JWT went upstream, or moat's key did not")
				}
				recs := e.lcAuditWith(func(r map[string]any) bool { return r["decision"] == "allow" })
				if len(recs) != 1 || recs[0]["user"] != "user-42" || recs[0]["client"] != "app" {
					b, _ := json.Marshal(recs)
					t.Fatalf("audit = %s, want one allowed call by user-42 of client app", b)
				}
			})

			bad := []struct {
				name, token, msg string
			}{
				{"expired", lcToken(t, secret, lcClaims("user-42", time.Now().Add(-time.Hour))), "token expired"},
				{"wrong issuer", lcToken(t, secret, func() jwt.MapClaims {
					c := lcClaims("user-42", time.Now().Add(5*time.Minute))
					c["iss"] = "https://evil.example.test"
					return c
				}()), "wrong issuer"},
				{"wrong audience", lcToken(t, secret, func() jwt.MapClaims {
					c := lcClaims("user-42", time.Now().Add(5*time.Minute))
					c["aud"] = "another-service"
					return c
				}()), "audience"},
				{"alg none", func() string {
					s, err := jwt.NewWithClaims(jwt.SigningMethodNone, lcClaims("admin", time.Now().Add(5*time.Minute))).SignedString(jwt.UnsafeAllowNoneSignatureType)
					if err != nil {
						t.Fatal(err)
					}
					return s
				}(), "invalid token"},
				{"other secret", lcToken(t, strings.Repeat("z", 40), lcClaims("user-42", time.Now().Add(5*time.Minute))), "bad signature"},
				{"no sub", lcToken(t, secret, func() jwt.MapClaims {
					c := lcClaims("", time.Now().Add(5*time.Minute))
					delete(c, "sub")
					return c
				}()), "no sub"},
			}
			for _, tc := range bad {
				t.Run(tc.name, func(t *testing.T) {
					before := e.si.RequestCount()
					status, _, b := e.raw("POST", "/v1/messages", lcBody("hi"), map[string][]string{
						"Authorization":     {"Bearer " + tc.token},
						"anthropic-version": {"2023-06-01"},
						"content-type":      {"application/json"},
					})
					if status != http.StatusUnauthorized {
						t.Fatalf("status %d: %s", status, b)
					}
					typ, msg := errorBody(t, b)
					if typ != "authentication_error" || !strings.Contains(msg, tc.msg) {
						t.Fatalf("error %s %q, want authentication_error with %q", typ, msg, tc.msg)
					}
					if strings.Contains(string(b), tc.token) {
						t.Fatal("the token is echoed in the error")
					}
					if e.si.RequestCount() != before {
						t.Fatal("a refused token reached upstream")
					}
				})
			}
			t.Run("JWT user may not add a user header", func(t *testing.T) {
				status, _, _ := e.raw("POST", "/v1/messages", lcBody("hi"), map[string][]string{
					"Authorization":     {"Bearer " + valid},
					"X-Moat-User":       {"someone-else"},
					"anthropic-version": {"2023-06-01"},
					"content-type":      {"application/json"},
				})
				if status != http.StatusForbidden {
					t.Fatalf("status %d", status)
				}
			})
			lcNoSecret(t, "the logs", e.logs.String(), secret, valid)
			lcNoSecret(t, "the audit trail", strings.Join(e.auditLines(), "\n"), secret, valid)
		})
	}
}
