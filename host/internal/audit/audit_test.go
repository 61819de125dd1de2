package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/moat-gateway/moat/host/internal/fault"
)

// testCfg builds a Config for an audit file in dir from extra, TOML keys
// of config.toml's [audit] (content, hmac_key_env, hmac_key_file, fsync,
// max_size_mb, disabled, chain_key_env), with config.toml's defaults
// (content "off", hmac_key_env MOAT_AUDIT_HMAC_KEY, fsync "every").
func testCfg(t *testing.T, dir, extra string) Config {
	t.Helper()
	var a struct {
		Content     string `toml:"content"`
		HMACKeyEnv  string `toml:"hmac_key_env"`
		HMACKeyFile string `toml:"hmac_key_file"`
		FSync       string `toml:"fsync"`
		MaxSizeMB   int64  `toml:"max_size_mb"`
		Disabled    bool   `toml:"disabled"`
		ChainKeyEnv string `toml:"chain_key_env"`
	}
	md, err := toml.Decode(extra, &a)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	if u := md.Undecoded(); len(u) > 0 {
		t.Fatalf("testCfg does not know %v", u)
	}
	cfg := Config{
		Path: filepath.Join(dir, "audit.jsonl"), Content: a.Content, Disabled: a.Disabled,
		HMACKeyEnv: a.HMACKeyEnv, HMACKeyFile: a.HMACKeyFile, MaxBytes: a.MaxSizeMB << 20, ChainKeyEnv: a.ChainKeyEnv,
	}
	if cfg.Content == "" {
		cfg.Content = ContentOff
	}
	if cfg.HMACKeyEnv == "" && cfg.HMACKeyFile == "" {
		cfg.HMACKeyEnv = "MOAT_AUDIT_HMAC_KEY"
	}
	if a.FSync != "" && a.FSync != "every" {
		if cfg.FSyncInterval, err = time.ParseDuration(a.FSync); err != nil {
			t.Fatalf("fsync: %v", err)
		}
	}
	return cfg
}

func mustOpen(t *testing.T, cfg Config, opts Options) *Logger {
	t.Helper()
	l, err := Open(cfg, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func writeLines(t *testing.T, path string, lines []string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func rec(id string) *Record {
	return &Record{RequestID: id, Client: "app", User: "u1", SourceIP: "127.0.0.1", Endpoint: "/v1/messages",
		Model: "claude-x", Status: 200, Decision: DecisionAllow, InputTokens: 10, OutputTokens: 5, CostUSD: 0.001}
}

func TestEveryDecisionKindWritesOneLine(t *testing.T) {
	dir := t.TempDir()
	cfg := testCfg(t, dir, "")
	l := mustOpen(t, cfg, Options{Environment: "test"})
	cases := []struct {
		name, decision, by string
		status             int
		errMsg             string
		plugins            []PluginVerdict
	}{
		{"allowed", DecisionAllow, "", 200, "", []PluginVerdict{{Name: "pii", Phase: "input", Action: "modify", Duration: time.Millisecond}}},
		{"auth", DecisionRefuse, ByAuth, 401, "invalid key", nil},
		{"rate limit", DecisionRefuse, ByRateLimit, 429, "rate limit exceeded", nil},
		{"budget", DecisionRefuse, ByBudget, 402, "budget exhausted", nil},
		{"plugin", DecisionRefuse, ByPluginPrefix + "injection", 400, "", []PluginVerdict{{Name: "injection", Phase: "input", Action: "reject", Reason: "prompt injection", Duration: 3 * time.Millisecond}}},
		{"upstream", DecisionError, ByUpstream, 502, "upstream 529 overloaded", nil},
		{"gateway", DecisionError, ByGateway, 500, "internal error", nil},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := rec(fmt.Sprintf("req-%d", i))
			r.Decision, r.DecidedBy, r.Status, r.Error, r.Plugins = c.decision, c.by, c.status, c.errMsg, c.plugins
			if err := l.Write(context.Background(), r); err != nil {
				t.Fatalf("Write: %v", err)
			}
			if r.Seq != uint64(i+1) || len(r.Hash) != 64 {
				t.Fatalf("chain fields not returned: seq %d hash %q", r.Seq, r.Hash)
			}
			lines := readLines(t, cfg.Path)
			if len(lines) != i+1 {
				t.Fatalf("%d lines after %d writes", len(lines), i+1)
			}
			var got Record
			if err := json.Unmarshal([]byte(lines[i]), &got); err != nil {
				t.Fatal(err)
			}
			if got.Decision != c.decision || got.DecidedBy != c.by || got.Status != c.status || got.Error != c.errMsg ||
				got.RequestID != r.RequestID || got.Environment != "test" || !reflect.DeepEqual(got.Plugins, c.plugins) {
				t.Fatalf("line does not carry the decision: %s", lines[i])
			}
		})
	}
	if rep, err := verifyFiles(t, cfg.Path); err != nil || rep.Records != len(cases) || rep.Anchored {
		t.Fatalf("Verify: %+v %v", rep, err)
	}
}

func TestRecordFieldsFormat(t *testing.T) {
	dir := t.TempDir()
	cfg := testCfg(t, dir, "")
	loc := time.FixedZone("X", 3600)
	now := time.Date(2030, 1, 2, 3, 4, 5, 123456789, loc)
	l := mustOpen(t, cfg, Options{Environment: "prod", Now: func() time.Time { return now }})
	r := rec("a")
	r.Latency, r.GatewayLatency, r.Stream, r.UpstreamRequestID = 1500*time.Millisecond, 2*time.Millisecond, true, "req_up"
	r.CacheReadTokens, r.CacheWriteTokens = 3, 4
	if err := l.Write(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	line := readLines(t, cfg.Path)[0]
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatal(err)
	}
	if m["time"] != "2030-01-02T02:04:05.123456789Z" {
		t.Errorf("time = %v, want UTC RFC 3339 with nanoseconds", m["time"])
	}
	for k, want := range map[string]any{
		"request_id": "a", "environment": "prod", "client": "app", "user": "u1", "source_ip": "127.0.0.1",
		"endpoint": "/v1/messages", "model": "claude-x", "stream": true, "status": 200.0, "decision": "allow",
		"input_tokens": 10.0, "output_tokens": 5.0, "cache_read_tokens": 3.0, "cache_write_tokens": 4.0,
		"cost_usd": 0.001, "latency_ns": 1.5e9, "gateway_latency_ns": 2e6, "upstream_request_id": "req_up",
		"seq": 1.0, "prev_hash": GenesisHash,
	} {
		if m[k] != want {
			t.Errorf("%s = %v, want %v", k, m[k], want)
		}
	}
	if !strings.HasSuffix(line, `"hash":"`+r.Hash+`"}`) {
		t.Errorf("hash is not the last field: %s", line)
	}
	for _, k := range []string{"input_content", "output_content", "input_hmac", "content_mode"} {
		if _, ok := m[k]; ok {
			t.Errorf("content off but %s present", k)
		}
	}
}

// chainFile writes n records and returns the path and lines.
func chainFile(t *testing.T, n int) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	cfg := testCfg(t, dir, "")
	l := mustOpen(t, cfg, Options{})
	for i := 1; i <= n; i++ {
		if err := l.Write(context.Background(), rec(fmt.Sprintf("r%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return cfg.Path, readLines(t, cfg.Path)
}

// forge builds a self-consistent line (valid own MAC under the trail's
// chain key) for seq and prev: what only a holder of the key can do.
func forge(t *testing.T, path, id string, seq uint64, prev string) string {
	t.Helper()
	body, err := json.Marshal(rec(id))
	if err != nil {
		t.Fatal(err)
	}
	line, _ := newSealer(keyFor(t, path)).seal(nil, body, seq, prev)
	return strings.TrimSuffix(string(line), "\n")
}

func hashOf(t *testing.T, path, line string) string {
	t.Helper()
	li := newLineParser(keyFor(t, path)).parse([]byte(line))
	if li.kind != "" {
		t.Fatalf("bad line %s: %s", li.kind, li.detail)
	}
	return li.hash
}

// keyFor reads the chain key created next to path (testCfg puts the
// config, hence the default key file, beside the audit file).
func keyFor(t *testing.T, path string) *ChainKey {
	t.Helper()
	k, _, err := LoadChainKey(Config{Path: path}, false)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// rep0 returns the seq of the first line of file.
func rep0(t *testing.T, file string) uint64 {
	t.Helper()
	li := newLineParser(keyFor(t, file)).parse([]byte(readLines(t, file)[0]))
	if li.kind != "" {
		t.Fatalf("%s: %s", li.kind, li.detail)
	}
	return li.seq
}

// verifyFiles checks the chain of files with the key beside them, without
// checkpoints.
func verifyFiles(t *testing.T, files ...string) (Report, error) {
	t.Helper()
	return Verify(VerifyOptions{Files: files, Key: keyFor(t, files[0])})
}

func TestVerifyDetectsTampering(t *testing.T) {
	cases := []struct {
		name     string
		mutate   func(t *testing.T, path string, lines []string) []string
		wantKind string
		wantLine int
		wantSeq  uint64
	}{
		{"intact", func(t *testing.T, path string, l []string) []string { return l }, "", 0, 0},
		{"edited field", func(t *testing.T, path string, l []string) []string {
			l[2] = strings.Replace(l[2], `"client":"app"`, `"client":"bob"`, 1)
			return l
		}, KindEdited, 3, 3},
		{"edited and rehashed", func(t *testing.T, path string, l []string) []string {
			l[2] = forge(t, path, "evil", 3, hashOf(t, path, l[1]))
			return l
		}, KindEdited, 3, 3},
		{"deleted", func(t *testing.T, path string, l []string) []string { return append(l[:2:2], l[3:]...) }, KindDeleted, 3, 4},
		{"deleted two", func(t *testing.T, path string, l []string) []string { return append(l[:1:1], l[3:]...) }, KindDeleted, 2, 4},
		{"swapped", func(t *testing.T, path string, l []string) []string {
			l[2], l[3] = l[3], l[2]
			return l
		}, KindReordered, 3, 4},
		{"duplicated", func(t *testing.T, path string, l []string) []string {
			return append(append(l[:3:3], l[2]), l[3:]...)
		}, KindInserted, 4, 3},
		{"inserted forged record", func(t *testing.T, path string, l []string) []string {
			f := forge(t, path, "evil", 3, hashOf(t, path, l[1]))
			return append(append(l[:2:2], f), l[2:]...)
		}, KindInserted, 4, 3},
		{"inserted garbage", func(t *testing.T, path string, l []string) []string {
			return append(append(l[:2:2], `{"request_id":"evil"}`), l[2:]...)
		}, KindMalformed, 3, 0},
		{"first record deleted then seq 1 forged", func(t *testing.T, path string, l []string) []string {
			l[0] = forge(t, path, "evil", 1, strings.Repeat("a", 64))
			return l
		}, KindEdited, 1, 1},
		{"huge seq gap", func(t *testing.T, path string, l []string) []string {
			// Regression (found by FuzzVerify): a gap of 2^63 must not be
			// walked seq by seq.
			l[3] = forge(t, path, "evil", 1<<63, strings.Repeat("b", 64))
			return l
		}, KindInserted, 4, 1 << 63},
		{"hash field removed", func(t *testing.T, path string, l []string) []string {
			l[1] = l[1][:strings.LastIndex(l[1], `,"hash"`)] + "}"
			return l
		}, KindMalformed, 2, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path, lines := chainFile(t, 6)
			writeLines(t, path, c.mutate(t, path, lines))
			rep, err := verifyFiles(t, path)
			if c.wantKind == "" {
				if err != nil || !rep.OK() || rep.Records != 6 || rep.Anchored || rep.FirstSeq != 1 || rep.LastSeq != 6 {
					t.Fatalf("intact file rejected: %+v %v", rep, err)
				}
				return
			}
			if !errors.Is(err, ErrChainBroken) || rep.Problem == nil {
				t.Fatalf("tampering not detected: %+v %v", rep, err)
			}
			p := rep.Problem
			if p.Kind != c.wantKind || p.Line != c.wantLine || p.Seq != c.wantSeq || p.File != path {
				t.Fatalf("problem = %s, want %s at line %d seq %d", p, c.wantKind, c.wantLine, c.wantSeq)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("%s:%d", path, c.wantLine)) {
				t.Fatalf("error does not locate the line: %v", err)
			}
		})
	}
}

func TestVerifyTornLastLine(t *testing.T) {
	path, lines := chainFile(t, 3)
	b := []byte(strings.Join(lines, "\n") + "\n" + lines[2][:40])
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := verifyFiles(t, path)
	if !errors.Is(err, ErrChainBroken) || rep.Problem.Kind != KindMalformed || rep.Problem.Line != 4 {
		t.Fatalf("torn line not reported: %+v %v", rep, err)
	}
}

func TestVerifyErrors(t *testing.T) {
	k := fuzzKey(t)
	if _, err := Verify(VerifyOptions{Key: k}); err == nil {
		t.Error("no files: no error")
	}
	if _, err := Verify(VerifyOptions{Files: []string{filepath.Join(t.TempDir(), "missing")}, Key: k}); err == nil || errors.Is(err, ErrChainBroken) {
		t.Errorf("missing file: %v", err)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, nil, 0o600)
	if _, err := Verify(VerifyOptions{Files: []string{empty}}); err == nil {
		t.Error("no key: no error")
	}
	if rep, err := Verify(VerifyOptions{Files: []string{empty}, Key: k}); err != nil || rep.Records != 0 || len(rep.Notes) != 1 {
		t.Errorf("empty file: %+v %v", rep, err)
	}
}

// rotatedTrail writes records big enough to rotate a 1 MB file several times.
func rotatedTrail(t *testing.T) (Config, []string) {
	t.Helper()
	dir := t.TempDir()
	cfg := testCfg(t, dir, "content = \"full\"\nmax_size_mb = 1")
	l := mustOpen(t, cfg, Options{})
	big := strings.Repeat("x", 300<<10)
	for i := 0; i < 10; i++ {
		r := rec(fmt.Sprintf("r%d", i))
		r.Input = big
		if err := l.Write(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := Files(cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, files
}

func TestRotation(t *testing.T) {
	cfg, files := rotatedTrail(t)
	if len(files) < 3 || files[len(files)-1] != cfg.Path {
		t.Fatalf("expected several rotated files then the current one, got %v", files)
	}
	total := 0
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > 1<<20 {
			t.Errorf("%s is %d bytes, over max_size_mb", f, st.Size())
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v", f, st.Mode().Perm())
		}
		total += len(readLines(t, f))
	}
	if total != 10 {
		t.Fatalf("%d records across files, want 10", total)
	}
	t.Run("whole set verifies", func(t *testing.T) {
		rep, err := verifyFiles(t, files...)
		if err != nil || rep.Records != 10 || rep.Anchored || rep.LastSeq != 10 {
			t.Fatalf("%+v %v", rep, err)
		}
	})
	t.Run("one rotated file alone is a cut head", func(t *testing.T) {
		rep, err := verifyFiles(t, files[1])
		if !errors.Is(err, ErrChainBroken) || rep.Problem.Kind != KindCutHead || rep.Problem.Line != 1 {
			t.Fatalf("%+v %v", rep, err)
		}
	})
	t.Run("one rotated file alone with from-seq is anchored", func(t *testing.T) {
		first := rep0(t, files[1])
		rep, err := Verify(VerifyOptions{Files: files[1:2], Key: keyFor(t, files[1]), FromSeq: first})
		if err != nil || !rep.Anchored || len(rep.Notes) == 0 || !strings.Contains(rep.Notes[0], "from-seq") {
			t.Fatalf("%+v %v", rep, err)
		}
	})
	t.Run("files out of order", func(t *testing.T) {
		_, err := verifyFiles(t, files[1], files[0])
		if !errors.Is(err, ErrChainBroken) {
			t.Fatalf("wrong order accepted: %v", err)
		}
	})
	t.Run("a rotated file missing", func(t *testing.T) {
		rep, err := verifyFiles(t, append(files[:1:1], files[2:]...)...)
		if !errors.Is(err, ErrChainBroken) || rep.Problem.Kind != KindDeleted || rep.Problem.File != files[2] || rep.Problem.Line != 1 {
			t.Fatalf("%+v %v", rep, err)
		}
	})
}

func TestConcurrentWrites(t *testing.T) {
	for _, fsync := range []string{"every", "5ms"} {
		t.Run("fsync "+fsync, func(t *testing.T) {
			dir := t.TempDir()
			cfg := testCfg(t, dir, fmt.Sprintf("fsync = %q", fsync))
			l := mustOpen(t, cfg, Options{})
			const writers, each = 200, 3
			var wg sync.WaitGroup
			errs := make(chan error, writers*each)
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < each; i++ {
						if err := l.Write(context.Background(), rec(fmt.Sprintf("w%d-%d", w, i))); err != nil {
							errs <- err
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			lines := readLines(t, cfg.Path)
			if len(lines) != writers*each {
				t.Fatalf("%d lines, want %d", len(lines), writers*each)
			}
			seen := map[string]bool{}
			for _, ln := range lines {
				var r Record
				if err := json.Unmarshal([]byte(ln), &r); err != nil {
					t.Fatalf("interleaved line %q: %v", ln, err)
				}
				if seen[r.RequestID] {
					t.Fatalf("duplicate %s", r.RequestID)
				}
				seen[r.RequestID] = true
			}
			if rep, err := verifyFiles(t, cfg.Path); err != nil || rep.LastSeq != writers*each {
				t.Fatalf("%+v %v", rep, err)
			}
		})
	}
}

func TestRestartContinuesChain(t *testing.T) {
	dir := t.TempDir()
	cfg := testCfg(t, dir, "")
	for round := 0; round < 3; round++ {
		l, err := Open(cfg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			r := rec(fmt.Sprintf("r%d-%d", round, i))
			if err := l.Write(context.Background(), r); err != nil {
				t.Fatal(err)
			}
			if want := uint64(round*2 + i + 1); r.Seq != want {
				t.Fatalf("seq %d, want %d", r.Seq, want)
			}
		}
		l.Close()
	}
	if rep, err := verifyFiles(t, cfg.Path); err != nil || rep.Records != 6 {
		t.Fatalf("%+v %v", rep, err)
	}

	t.Run("after external rotation", func(t *testing.T) {
		rotated := cfg.Path + "." + time.Now().UTC().Format(rotatedLayout)
		if err := os.Rename(cfg.Path, rotated); err != nil {
			t.Fatal(err)
		}
		l := mustOpen(t, cfg, Options{})
		r := rec("after")
		if err := l.Write(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		l.Close()
		if r.Seq != 7 {
			t.Fatalf("seq %d after rotation, want 7", r.Seq)
		}
		files, _ := Files(cfg.Path)
		if rep, err := verifyFiles(t, files...); err != nil || rep.Records != 7 {
			t.Fatalf("%v %+v %v", files, rep, err)
		}
	})
	t.Run("torn tail refuses to open", func(t *testing.T) {
		f, _ := os.OpenFile(cfg.Path, os.O_APPEND|os.O_WRONLY, 0)
		f.WriteString(`{"request_id":"torn`)
		f.Close()
		if _, err := Open(cfg, Options{}); !errors.Is(err, ErrCorruptTail) {
			t.Fatalf("Open on torn file: %v", err)
		}
	})
	t.Run("edited tail refuses to open", func(t *testing.T) {
		path, lines := chainFile(t, 3)
		lines[2] = strings.Replace(lines[2], `"app"`, `"bob"`, 1)
		writeLines(t, path, lines)
		c := cfg
		c.Path = path
		if _, err := Open(c, Options{}); !errors.Is(err, ErrCorruptTail) {
			t.Fatalf("Open on edited tail: %v", err)
		}
	})
}

func TestLongTailRecord(t *testing.T) {
	// A last record longer than the tail read chunk still continues the chain.
	dir := t.TempDir()
	cfg := testCfg(t, dir, `content = "full"`)
	l := mustOpen(t, cfg, Options{})
	r := rec("big")
	r.Input = strings.Repeat("y", 200<<10)
	l.Write(context.Background(), r)
	l.Close()
	l2 := mustOpen(t, cfg, Options{})
	r2 := rec("next")
	if err := l2.Write(context.Background(), r2); err != nil || r2.Seq != 2 || r2.PrevHash != r.Hash {
		t.Fatalf("seq %d prev %s (want %s): %v", r2.Seq, r2.PrevHash, r.Hash, err)
	}
}

func TestPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	cfg := testCfg(t, dir, "")
	l := mustOpen(t, cfg, Options{})
	if err := l.Write(context.Background(), rec("x")); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Dir(dir): 0o700, cfg.Path: 0o600} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", path, st.Mode().Perm(), want)
		}
	}
	t.Run("existing world-readable file is tightened", func(t *testing.T) {
		d := t.TempDir()
		c := testCfg(t, d, "")
		os.WriteFile(c.Path, nil, 0o644)
		os.Chmod(c.Path, 0o644)
		mustOpen(t, c, Options{})
		if st, _ := os.Stat(c.Path); st.Mode().Perm() != 0o600 {
			t.Fatalf("mode %v", st.Mode().Perm())
		}
	})
}

func TestUnwritableFailsClosed(t *testing.T) {
	// Both techniques fail for root too: a path below a regular file
	// (ENOTDIR) and a file that is /dev/full (ENOSPC on every write).
	t.Run("path under a file", func(t *testing.T) {
		dir := t.TempDir()
		blocker := filepath.Join(dir, "file")
		os.WriteFile(blocker, []byte("x"), 0o600)
		cfg := testCfg(t, filepath.Join(blocker, "sub"), "")
		if l, err := Open(cfg, Options{}); err == nil {
			l.Close()
			t.Fatal("Open succeeded below a regular file")
		}
	})
	t.Run("disk full", func(t *testing.T) {
		if _, err := os.Stat("/dev/full"); err != nil {
			t.Skip("no /dev/full on this system")
		}
		for _, fsync := range []string{"every", "1s"} {
			t.Run(fsync, func(t *testing.T) {
				dir := t.TempDir()
				cfg := testCfg(t, dir, fmt.Sprintf("fsync = %q", fsync))
				if err := os.Symlink("/dev/full", cfg.Path); err != nil {
					t.Fatal(err)
				}
				l := mustOpen(t, cfg, Options{})
				if err := l.Healthy(); err != nil {
					t.Fatalf("unhealthy before any write: %v", err)
				}
				err := l.Write(context.Background(), rec("x"))
				if !errors.Is(err, ErrWrite) || !errors.Is(err, fault.AuditUnavailable) {
					t.Fatalf("Write on a full disk: %v", err)
				}
				if h := l.Healthy(); !errors.Is(h, ErrWrite) || !errors.Is(h, fault.AuditUnavailable) {
					t.Fatalf("Healthy after failed write: %v", l.Healthy())
				}
				// The chain did not advance: a later record is still seq 1.
				r := rec("y")
				l.Write(context.Background(), r)
				if r.Seq != 0 {
					t.Fatalf("failed write got seq %d", r.Seq)
				}
			})
		}
	})
}

func TestNilAndDisabled(t *testing.T) {
	var l *Logger
	if err := l.Write(context.Background(), rec("x")); err != nil {
		t.Error(err)
	}
	if l.Healthy() != nil || l.Close() != nil {
		t.Error("nil logger not healthy")
	}
	cfg := testCfg(t, t.TempDir(), "disabled = true")
	l, err := Open(cfg, Options{})
	if l != nil || err != nil {
		t.Fatalf("disabled: %v %v", l, err)
	}
	if _, err := os.Stat(cfg.Path); !errors.Is(err, os.ErrNotExist) {
		t.Error("disabled audit created a file")
	}
}

func TestClose(t *testing.T) {
	cfg := testCfg(t, t.TempDir(), `fsync = "1h"`)
	l := mustOpen(t, cfg, Options{})
	if err := l.Write(context.Background(), rec("x")); err != nil {
		t.Fatal(err)
	}
	if n := len(readLines(t, cfg.Path)); n != 1 {
		t.Fatalf("interval mode: record not in file before sync (%d lines)", n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if err := l.Write(context.Background(), rec("y")); !errors.Is(err, ErrClosed) || !errors.Is(err, fault.AuditUnavailable) {
		t.Fatalf("Write after Close: %v", err)
	}
	if !errors.Is(l.Healthy(), ErrClosed) {
		t.Fatal("Healthy after Close")
	}
	if err := l.Write(context.Background(), nil); err == nil {
		t.Fatal("nil record accepted")
	}
}

func TestCanceledContext(t *testing.T) {
	cfg := testCfg(t, t.TempDir(), "")
	l := mustOpen(t, cfg, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// A canceled context either wins (error, record possibly not written) or
	// loses the race (written); it never yields a broken file.
	for i := 0; i < 50; i++ {
		err := l.Write(ctx, rec(fmt.Sprintf("c%d", i)))
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
	}
	l.Close()
	if _, err := verifyFiles(t, cfg.Path); err != nil {
		t.Fatal(err)
	}
}

func TestSearch(t *testing.T) {
	dir := t.TempDir()
	cfg := testCfg(t, dir, "")
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	tick := 0
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		tick++
		return base.Add(time.Duration(tick) * time.Minute)
	}
	l := mustOpen(t, cfg, Options{Now: now})
	for i := 0; i < 10; i++ {
		r := rec(fmt.Sprintf("r%d", i))
		r.Client = []string{"a", "b"}[i%2]
		r.User = fmt.Sprintf("u%d", i%3)
		if i%4 == 0 {
			r.Decision, r.DecidedBy = DecisionRefuse, ByRateLimit
		}
		if err := l.Write(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	ids := func(rs []Record) string {
		var s []string
		for _, r := range rs {
			s = append(s, r.RequestID)
		}
		return strings.Join(s, ",")
	}
	cases := []struct {
		name string
		q    Query
		want string
	}{
		{"all newest first", Query{}, "r9,r8,r7,r6,r5,r4,r3,r2,r1,r0"},
		{"limit", Query{Limit: 3}, "r9,r8,r7"},
		{"request id", Query{RequestID: "r4"}, "r4"},
		{"client", Query{Client: "b", Limit: 2}, "r9,r7"},
		{"user", Query{User: "u0"}, "r9,r6,r3,r0"},
		{"decision", Query{Decision: DecisionRefuse}, "r8,r4,r0"},
		{"time range", Query{Since: base.Add(3 * time.Minute), Until: base.Add(6 * time.Minute)}, "r4,r3,r2"},
		{"no match", Query{Client: "zzz"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Search(cfg.Path, c.q)
			if err != nil {
				t.Fatal(err)
			}
			if ids(got) != c.want {
				t.Fatalf("got %s, want %s", ids(got), c.want)
			}
		})
	}
	t.Run("across rotated files", func(t *testing.T) {
		cfg, _ := rotatedTrail(t)
		got, err := Search(cfg.Path, Query{Limit: 4})
		if err != nil || ids(got) != "r9,r8,r7,r6" {
			t.Fatalf("%s %v", ids(got), err)
		}
	})
}

func TestFileMovedOrDeletedWhileOpen(t *testing.T) {
	t.Run("moved by an external rotation", func(t *testing.T) {
		cfg := testCfg(t, t.TempDir(), "")
		l := mustOpen(t, cfg, Options{})
		l.Write(context.Background(), rec("a"))
		os.Rename(cfg.Path, cfg.Path+"."+time.Now().UTC().Format(rotatedLayout))
		if err := l.Write(context.Background(), rec("b")); err != nil {
			t.Fatal(err)
		}
		l.Close()
		files, _ := Files(cfg.Path)
		if rep, err := verifyFiles(t, files...); err != nil || len(files) != 2 || rep.Records != 2 || rep.Anchored {
			t.Fatalf("%v %+v %v", files, rep, err)
		}
	})
	t.Run("deleted", func(t *testing.T) {
		cfg := testCfg(t, t.TempDir(), "")
		l := mustOpen(t, cfg, Options{})
		l.Write(context.Background(), rec("a"))
		os.Remove(cfg.Path)
		if err := l.Write(context.Background(), rec("b")); err != nil {
			t.Fatal(err)
		}
		l.Close()
		// The new file exists and shows it does not start the chain.
		rep, err := verifyFiles(t, cfg.Path)
		if !errors.Is(err, ErrChainBroken) || rep.Problem.Kind != KindCutHead || rep.FirstSeq != 2 {
			t.Fatalf("%+v %v", rep, err)
		}
	})
}

func TestPathIsDirectory(t *testing.T) {
	dir := t.TempDir()
	cfg := testCfg(t, dir, "")
	os.Mkdir(cfg.Path, 0o700)
	if l, err := Open(cfg, Options{}); err == nil {
		l.Close()
		t.Fatal("Open succeeded on a directory")
	}
}

func TestNonFiniteCost(t *testing.T) {
	cfg := testCfg(t, t.TempDir(), "")
	l := mustOpen(t, cfg, Options{})
	r := rec("nan")
	r.CostUSD = math.NaN()
	if err := l.Write(context.Background(), r); err != nil {
		t.Fatalf("NaN cost refused the record: %v", err)
	}
	if r.CostUSD != 0 {
		t.Fatalf("cost %v", r.CostUSD)
	}
}
