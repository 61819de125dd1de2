package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/moat-gateway/moat/host/internal/auth"
)

// doorsJWT is the [jwt] block of the doors tests (HS256, secret from env).
func doorsJWT(t *testing.T) (toml, secret string) {
	secret = "jwt-secret-doors-" + strings.Repeat("k9", 16)
	t.Setenv("MOAT_E2E_DOORS_JWT", secret)
	return fmt.Sprintf("[jwt]\nenabled = true\nclient = \"app\"\nalgorithms = [\"HS256\"]\nsecret_env = \"MOAT_E2E_DOORS_JWT\"\nissuer = %q\naudience = %q\n", lcIssuer, lcAudience), secret
}

// doorsPost sends one /v1/messages call with the given headers and returns
// the status and the decoded Anthropic error (type, message) if any. Safe
// from any goroutine.
func doorsPost(url string, hdr map[string]string, body []byte) (int, string, string, error) {
	req, err := http.NewRequest(http.MethodPost, url+"/v1/messages", bytes.NewReader(body))
	if err != nil {
		return 0, "", "", err
	}
	req.Header.Set("content-type", "application/json")
	req.Header.Set("anthropic-version", "2023-06-01")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e struct {
		Type  string `json:"type"`
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if resp.StatusCode != http.StatusOK {
		if err := json.Unmarshal(b, &e); err != nil || e.Type != "error" {
			return resp.StatusCode, "", "", fmt.Errorf("status %d without an Anthropic error body: %s", resp.StatusCode, b)
		}
		if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("retry-after") == "" {
			return resp.StatusCode, "", "", fmt.Errorf("429 without retry-after")
		}
	}
	return resp.StatusCode, e.Error.Type, e.Error.Message, nil
}

func badKey(t *testing.T) string {
	k, _, err := auth.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestLockoutSparesValidCallers: an attacker and valid clients share an
// address. 48 bad keys from 24 concurrent attackers race 24 calls with a
// valid key and a valid JWT through the official SDK: every valid call is
// served, exactly auth_fail_rate (20) bad keys get a 401 and the rest a
// 429. Afterwards a valid key and a valid JWT from that address are still
// served, while failures from it (bad key, no key) stay locked out. One
// credential tried from many addresses is locked out by itself.
func TestLockoutSparesValidCallers(t *testing.T) {
	jwtTOML, secret := doorsJWT(t)
	e := start(t, envOpts{server: `trusted_proxies = ["127.0.0.1/32"]`, extra: jwtTOML})
	tok := lcToken(t, secret, lcClaims("user-7", time.Now().Add(10*time.Minute)))
	keyClient := e.sdk()
	jwtClient := anthropic.NewClient(option.WithBaseURL(e.url), option.WithAuthToken(tok), option.WithMaxRetries(0))
	body := lcBody("hi")

	t.Run("shared address under concurrency", func(t *testing.T) {
		const attackers, perAttacker, valid, perValid = 24, 2, 6, 2
		bad := make([]string, attackers*perAttacker)
		for i := range bad {
			bad[i] = badKey(t)
		}
		var (
			mu       sync.Mutex
			codes    = map[int]int{}
			problems []string
			wg       sync.WaitGroup
			gate     = make(chan struct{})
		)
		fail := func(f string, a ...any) { mu.Lock(); problems = append(problems, fmt.Sprintf(f, a...)); mu.Unlock() }
		for a := range attackers {
			wg.Go(func() {
				<-gate
				for j := range perAttacker {
					st, typ, _, err := doorsPost(e.url, map[string]string{"x-api-key": bad[a*perAttacker+j]}, body)
					if err != nil {
						fail("attacker: %v", err)
						continue
					}
					if !(st == 401 && typ == "authentication_error") && !(st == 429 && typ == "rate_limit_error") {
						fail("attacker got %d %s", st, typ)
					}
					mu.Lock()
					codes[st]++
					mu.Unlock()
				}
			})
		}
		for v := range valid {
			for _, c := range []anthropic.Client{keyClient, jwtClient} {
				wg.Go(func() {
					<-gate
					for range perValid {
						if _, err := c.Messages.New(context.Background(), userMsg(fmt.Sprintf("valid %d", v))); err != nil {
							fail("a valid caller was refused: %v", err)
						}
					}
				})
			}
		}
		close(gate)
		wg.Wait()
		if len(problems) > 0 {
			t.Fatalf("%d problems, first: %s", len(problems), problems[0])
		}
		if codes[401] != 20 || codes[429] != attackers*perAttacker-20 {
			t.Fatalf("bad keys got %v, want exactly 20 401s and %d 429s", codes, attackers*perAttacker-20)
		}
	})

	t.Run("after the attack", func(t *testing.T) {
		if _, err := keyClient.Messages.New(context.Background(), userMsg("valid key after 48 bad ones")); err != nil {
			t.Fatalf("valid key refused: %v", err)
		}
		if _, err := jwtClient.Messages.New(context.Background(), userMsg("valid jwt after 48 bad keys")); err != nil {
			t.Fatalf("valid JWT refused: %v", err)
		}
		expired := lcToken(t, secret, lcClaims("user-7", time.Now().Add(-time.Hour)))
		for name, hdr := range map[string]map[string]string{
			"bad key":     {"x-api-key": badKey(t)},
			"no key":      {},
			"expired jwt": {"authorization": "Bearer " + expired},
		} {
			st, typ, msg, err := doorsPost(e.url, hdr, body)
			if err != nil || st != 429 || typ != "rate_limit_error" || !strings.Contains(msg, "failed authentications") {
				t.Errorf("%s: %d %s %q %v, want the lockout's 429", name, st, typ, msg, err)
			}
		}
	})

	t.Run("one credential from many addresses", func(t *testing.T) {
		stolen := badKey(t)
		codes := map[int]int{}
		for i := range 25 {
			st, _, _, err := doorsPost(e.url, map[string]string{"x-api-key": stolen, "x-forwarded-for": fmt.Sprintf("198.51.100.%d", i+1)}, body)
			if err != nil {
				t.Fatal(err)
			}
			codes[st]++
		}
		if codes[401] != 20 || codes[429] != 5 {
			t.Fatalf("one credential from 25 addresses got %v, want 20 401s then 5 429s", codes)
		}
		st, typ, _, err := doorsPost(e.url, map[string]string{"x-api-key": badKey(t), "x-forwarded-for": "198.51.100.1"}, body)
		if err != nil || st != 401 || typ != "authentication_error" {
			t.Fatalf("another bad key from one of those addresses: %d %s %v, want 401", st, typ, err)
		}
		st, _, _, err = doorsPost(e.url, map[string]string{"x-api-key": e.key, "x-forwarded-for": "198.51.100.2"}, body)
		if err != nil || st != 200 {
			t.Fatalf("valid key from one of those addresses: %d %v", st, err)
		}
	})
}

// TestUserIDsStayIdentities: a user id from any source (a trusted client's
// header, metadata.user_id, a JWT's sub) that is too long or holds
// non-printable characters is refused with a 400 invalid_request_error in
// Anthropic's shape, never relayed, and the refusal is on the record.
func TestUserIDsStayIdentities(t *testing.T) {
	jwtTOML, secret := doorsJWT(t)
	e := start(t, envOpts{client: "trusted = true\nuser_header = \"X-End-User\"", extra: jwtTOML})
	bad := []struct {
		name, id string
	}{
		{"newline", "alice\nadmin"},
		{"NUL", "alice\x00"},
		{"bidi override", "alice\u202egnp.exe"},
		{"zero-width", "ali\u200bce"},
		{"257 bytes", strings.Repeat("u", 257)},
		{"1 MB", strings.Repeat("u", 1<<20)},
		{"invalid utf-8", "alice\xff"},
	}
	sources := []struct {
		name string
		send func(id string) (int, string, error)
	}{
		{"metadata.user_id via SDK", func(id string) (int, string, error) {
			if !utf8.ValidString(id) {
				return 0, "", nil // JSON encoders send U+FFFD instead
			}
			p := userMsg("hi")
			p.Metadata = anthropic.MetadataParam{UserID: anthropic.String(id)}
			c := e.sdk()
			_, err := c.Messages.New(context.Background(), p)
			var ae *anthropic.Error
			if !errors.As(err, &ae) {
				return 200, "", err
			}
			return ae.StatusCode, ae.RawJSON(), nil
		}},
		{"header", func(id string) (int, string, error) {
			if strings.ContainsAny(id, "\n\x00") || len(id) > 4096 {
				return 0, "", nil // not sendable as a header value
			}
			st, typ, msg, err := doorsPost(e.url, map[string]string{"x-api-key": e.key, "x-end-user": id}, lcBody("hi"))
			return st, typ + " " + msg, err
		}},
		{"jwt sub", func(id string) (int, string, error) {
			if len(id) > 4096 || !utf8.ValidString(id) {
				return 0, "", nil // beyond the credential cap (a 401), or not JSON-encodable
			}
			tok := lcToken(t, secret, lcClaims(id, time.Now().Add(time.Minute)))
			st, typ, msg, err := doorsPost(e.url, map[string]string{"authorization": "Bearer " + tok}, lcBody("hi"))
			return st, typ + " " + msg, err
		}},
	}
	sent := 0
	before := len(e.si.Requests())
	for _, src := range sources {
		for _, b := range bad {
			t.Run(src.name+"/"+b.name, func(t *testing.T) {
				st, detail, err := src.send(b.id)
				if st == 0 && err == nil {
					t.Skip("not expressible through this source")
				}
				sent++
				if err != nil || st != 400 || !strings.Contains(detail, "invalid_request_error") || !strings.Contains(detail, "printable") {
					t.Fatalf("got %d %q %v, want 400 invalid_request_error naming the rule", st, detail, err)
				}
			})
		}
	}
	if n := len(e.si.Requests()) - before; n != 0 {
		t.Fatalf("%d refused calls reached the upstream", n)
	}
	recs := e.lcAuditWith(func(r map[string]any) bool { return r["status"] == float64(400) })
	if len(recs) != sent {
		t.Fatalf("%d audit records of 400s, want %d", len(recs), sent)
	}
	t.Run("valid ids pass", func(t *testing.T) {
		p := userMsg("hi")
		p.Metadata = anthropic.MetadataParam{UserID: anthropic.String("user-é-42")}
		c := e.sdk(option.WithHeader("X-End-User", "Alice Smith"))
		if _, err := c.Messages.New(context.Background(), p); err != nil {
			t.Fatal(err)
		}
		tok := lcToken(t, secret, lcClaims("user@example.com", time.Now().Add(time.Minute)))
		if st, _, msg, err := doorsPost(e.url, map[string]string{"authorization": "Bearer " + tok}, lcBody("hi")); err != nil || st != 200 {
			t.Fatalf("valid sub: %d %s %v", st, msg, err)
		}
	})
}
