package e2e

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
)

// rawGet sends "GET target" exactly as written (no client-side cleaning or
// re-encoding) and returns the status.
func rawGet(t *testing.T, base, target string, hdr map[string]string) int {
	t.Helper()
	host := strings.TrimPrefix(base, "http://")
	c, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", target, host)
	for k, v := range hdr {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(c, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestPathsRelayedAsParsed: a model id is decoded once and re-encoded as
// one path segment upstream; "..", encoded "/", "?", "#" and double
// encodings never change the upstream path or start a query, and "." or
// ".." ids are refused without an upstream call.
func TestPathsRelayedAsParsed(t *testing.T) {
	e := start(t, envOpts{})
	hdr := map[string]string{"x-api-key": e.key, "anthropic-version": "2023-06-01"}
	cases := []struct {
		name, target string
		upstream     string // the request line target upstream; "" = not relayed
	}{
		{"plain", "/v1/models/" + model, "/v1/models/" + model},
		{"encoded question mark", "/v1/models/..%3Fa=b", "/v1/models/..%3Fa=b"},
		{"encoded slash", "/v1/models/a%2Fb", "/v1/models/a%2Fb"},
		{"encoded slash traversal", "/v1/models/..%2F..%2Fmessages", "/v1/models/..%2F..%2Fmessages"},
		{"encoded hash", "/v1/models/a%23b", "/v1/models/a%23b"},
		{"double-encoded slash", "/v1/models/a%252Fb", "/v1/models/a%252Fb"},
		{"double-encoded question mark", "/v1/models/x%253Fy=1", "/v1/models/x%253Fy=1"},
		{"double-encoded dots", "/v1/models/%252E%252E", "/v1/models/%252E%252E"},
		{"query kept as a query", "/v1/models/a%3Fb?limit=2", "/v1/models/a%3Fb?limit=2"},
		{"list query re-encoded", "/v1/models?after_id=x%26y&limit=5", "/v1/models?after_id=x%26y&limit=5"},
		{"dot dot", "/v1/models/..", ""},
		{"encoded dot dot", "/v1/models/%2E%2E", ""},
		{"dot", "/v1/models/.", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.si.Requests())
			st := rawGet(t, e.url, tc.target, hdr)
			reqs := e.si.Requests()
			if tc.upstream == "" {
				if st != http.StatusNotFound || len(reqs) != before {
					t.Fatalf("status %d, %d upstream calls; want a 404 and none", st, len(reqs)-before)
				}
				return
			}
			if len(reqs) != before+1 {
				t.Fatalf("status %d, %d upstream calls; want one", st, len(reqs)-before)
			}
			if got := reqs[len(reqs)-1].RequestURI; got != tc.upstream {
				t.Fatalf("upstream saw %q, want %q", got, tc.upstream)
			}
		})
	}
	t.Run("official SDK", func(t *testing.T) {
		c := e.sdk()
		m, err := c.Models.Get(context.Background(), model, anthropic.ModelGetParams{})
		if err != nil || m.ID != model {
			t.Fatalf("Models.Get: %+v, %v", m, err)
		}
		if got := e.si.Last().RequestURI; got != "/v1/models/"+model {
			t.Fatalf("upstream saw %q", got)
		}
	})
}

// TestEveryRequestOnRecord: unrouted paths and requests refused before
// authentication are written to the audit trail; a flood of them writes
// at most audit.unauthenticated_rate lines while every authenticated call
// is still written, and the rest are counted in the metrics.
func TestEveryRequestOnRecord(t *testing.T) {
	t.Run("unrouted and unauthenticated", func(t *testing.T) {
		e := start(t, envOpts{})
		hc := doorsClient(t)
		for _, target := range []string{"/v1/nothing", "/admin/usage", "/v1/models/a/b", "/%2e%2e/etc/passwd"} {
			if st := rawGet(t, e.url, target, nil); st != http.StatusNotFound {
				t.Fatalf("GET %s: %d, want 404", target, st)
			}
		}
		st, _, _, err := doorsPost(hc, e.url, map[string]string{"x-api-key": badKey(t)}, lcBody("hi"))
		if err != nil || st != 401 {
			t.Fatalf("bad key: %d %v", st, err)
		}
		unrouted := e.lcAuditWith(func(r map[string]any) bool { return r["endpoint"] == "unrouted" })
		if len(unrouted) != 4 {
			t.Fatalf("%d audit lines for unrouted paths, want 4", len(unrouted))
		}
		for _, r := range unrouted {
			if r["status"] != float64(404) || r["decision"] != "refuse" || r["source_ip"] != "127.0.0.1" || !strings.HasPrefix(fmt.Sprint(r["error"]), "no route for GET /") {
				t.Errorf("unrouted record %v", r)
			}
		}
		authFail := e.lcAuditWith(func(r map[string]any) bool { return r["decided_by"] == "auth" })
		if len(authFail) != 1 || authFail[0]["status"] != float64(401) {
			t.Fatalf("auth refusals on record: %v", authFail)
		}
	})

	t.Run("flood bounded", func(t *testing.T) {
		e := start(t, envOpts{audit: `unauthenticated_rate = "10-M"`})
		hc := doorsClient(t)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var problems []string
		for i := range 60 {
			wg.Go(func() {
				var st int
				var err error
				if i%2 == 0 {
					st, _, _, err = doorsPost(hc, e.url, map[string]string{"x-api-key": badKey(t)}, lcBody("x"))
				} else {
					var resp *http.Response
					resp, err = hc.Get(e.url + "/v1/flood/" + strconv.Itoa(i))
					if err == nil {
						st = resp.StatusCode
						resp.Body.Close()
					}
				}
				if err != nil || (st != 401 && st != 404 && st != 429) {
					mu.Lock()
					problems = append(problems, fmt.Sprintf("%d %v", st, err))
					mu.Unlock()
				}
			})
		}
		for range 5 {
			wg.Go(func() {
				if st, _, msg, err := doorsPost(hc, e.url, map[string]string{"x-api-key": e.key}, lcBody("valid")); err != nil || st != 200 {
					mu.Lock()
					problems = append(problems, fmt.Sprintf("valid call: %d %s %v", st, msg, err))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(problems) > 0 {
			t.Fatalf("%d problems, first %s", len(problems), problems[0])
		}
		unauth := e.lcAuditWith(func(r map[string]any) bool { return r["client"] == nil })
		authed := e.lcAuditWith(func(r map[string]any) bool { return r["client"] == "app" && r["status"] == float64(200) })
		if len(unauth) != 10 || len(authed) != 5 {
			t.Fatalf("%d unauthenticated and %d authenticated lines, want 10 and 5", len(unauth), len(authed))
		}
		m := regexp.MustCompile(`moat_audit_unauthenticated_sampled_out_total (\d+)`).FindStringSubmatch(e.metrics())
		if m == nil || m[1] != "50" {
			t.Fatalf("sampled-out metric %v, want 50", m)
		}
	})
}

// adminGet calls the admin listener with the token (when tok != "") and a
// Host header (when host != "").
func adminDo(t *testing.T, client *http.Client, method, url, tok, host string, hdr map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAdminSurface: with metrics_auth /metrics needs the token; the admin
// listener refuses a foreign Host (also through a DNS name rebound to
// 127.0.0.1) and a cross-origin reload; wrong tokens are throttled, after
// which even the right one waits; over TLS the listener serves HTTPS only.
func TestAdminSurface(t *testing.T) {
	e := start(t, envOpts{admin: "metrics_auth = true"})
	base := "http://" + e.admin
	c := http.DefaultClient
	_, port, _ := net.SplitHostPort(e.admin)
	rebound := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, e.admin)
	}}}
	cases := []struct {
		name        string
		client      *http.Client
		method, url string
		tok, host   string
		hdr         map[string]string
		want        int
	}{
		{"metrics without token", c, "GET", base + "/metrics", "", "", nil, 401},
		{"metrics with token", c, "GET", base + "/metrics", e.adminTok, "", nil, 200},
		{"localhost Host", c, "GET", base + "/admin/usage", e.adminTok, "localhost:" + port, nil, 200},
		{"foreign Host", c, "GET", base + "/admin/usage", e.adminTok, "evil.example", nil, 421},
		{"foreign Host on metrics", c, "GET", base + "/metrics", e.adminTok, "evil.example:" + port, nil, 421},
		{"foreign Host on the console", c, "GET", base + "/console/login", "", "evil.example", nil, 421},
		{"DNS rebinding", rebound, "GET", "http://rebind.attacker.test:" + port + "/admin/usage", e.adminTok, "", nil, 421},
		{"cross-origin reload", c, "POST", base + "/admin/reload", e.adminTok, "", map[string]string{"Origin": "http://evil.example"}, 403},
		{"cross-site reload", c, "POST", base + "/admin/reload", e.adminTok, "", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"same-origin reload", c, "POST", base + "/admin/reload", e.adminTok, "", map[string]string{"Origin": base}, 200},
		{"reload without Origin", c, "POST", base + "/admin/reload", e.adminTok, "", nil, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, body := adminDo(t, tc.client, tc.method, tc.url, tc.tok, tc.host, tc.hdr)
			if st != tc.want {
				t.Fatalf("%d %s, want %d", st, body, tc.want)
			}
			if st >= 400 && !strings.Contains(body, `"type":"error"`) {
				t.Fatalf("refusal not in Anthropic's shape: %s", body)
			}
		})
	}
	t.Run("wrong tokens throttled", func(t *testing.T) {
		codes := map[int]int{}
		for i := range 14 {
			st, _ := adminDo(t, c, "GET", base+"/admin/usage", e.adminTok+strconv.Itoa(i), "", nil)
			codes[st]++
		}
		// metrics without token above counted one failure already.
		if codes[401] != 9 || codes[429] != 5 {
			t.Fatalf("wrong tokens got %v, want 9 401s then 429s (10 per minute per address)", codes)
		}
		if st, _ := adminDo(t, c, "GET", base+"/admin/usage", e.adminTok, "", nil); st != 429 {
			t.Fatalf("right token from a throttled address: %d, want 429", st)
		}
	})
	t.Run("TLS", func(t *testing.T) {
		dir := t.TempDir()
		pool := writeSelfSigned(t, dir)
		te := start(t, envOpts{admin: fmt.Sprintf("tls_cert_file = %q\ntls_key_file = %q", filepath.Join(dir, "admin.crt"), filepath.Join(dir, "admin.key"))})
		tc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		if st, body := adminDo(t, tc, "GET", "https://"+te.admin+"/admin/usage", te.adminTok, "", nil); st != 200 {
			t.Fatalf("over TLS: %d %s", st, body)
		}
		if st, _ := adminDo(t, c, "GET", "http://"+te.admin+"/admin/usage", te.adminTok, "", nil); st != http.StatusBadRequest {
			t.Fatalf("plain HTTP to the TLS listener: %d, want 400", st)
		}
	})
}

// writeSelfSigned writes admin.crt and admin.key for 127.0.0.1 into dir
// and returns a pool trusting the certificate.
func writeSelfSigned(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "moat admin test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "admin.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "admin.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}
