package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// trail writes n records through a real Logger (so the key and the
// checkpoint file exist) and returns the config and the lines.
func trail(t *testing.T, n int) (Config, []string) {
	t.Helper()
	cfg := testCfg(t, t.TempDir(), "")
	l := mustOpen(t, cfg, Options{})
	for i := 1; i <= n; i++ {
		if err := l.Write(context.Background(), rec(fmt.Sprintf("r%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return cfg, readLines(t, cfg.Path)
}

var chainSuffix = regexp.MustCompile(`,"seq":\d+(,"key_id":"[0-9a-f]+")?,"prev_hash":"[0-9a-f]{64}","hash":"[0-9a-f]{64}"}$`)

// plainSHA256Seal re-hashes a record the way the old format did (and the
// way an attacker without the chain key can): SHA-256 of the line without
// its hash member. keepKeyID leaves the key_id member in place.
func plainSHA256Seal(t *testing.T, line string, seq uint64, prev string, keepKeyID bool) string {
	t.Helper()
	m := chainSuffix.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("not a record: %s", line)
	}
	body := strings.TrimSuffix(line, m[0])
	hashed := body + `,"seq":` + strconv.FormatUint(seq, 10)
	if keepKeyID {
		hashed += m[1]
	}
	hashed += `,"prev_hash":"` + prev + `"}`
	sum := sha256.Sum256([]byte(hashed))
	return strings.TrimSuffix(hashed, "}") + `,"hash":"` + hex.EncodeToString(sum[:]) + `"}`
}

func sha256Of(t *testing.T, line string) string {
	var cf struct{ Hash string }
	if err := json.Unmarshal([]byte(line), &cf); err != nil {
		t.Fatal(err)
	}
	return cf.Hash
}

// rehashFrom edits record i (0-based) with edit and re-hashes it and every
// later record with plain SHA-256, relinking them: the attack the old,
// unkeyed chain could not detect.
func rehashFrom(t *testing.T, lines []string, i int, edit func(string) string, keepKeyID bool) []string {
	out := append([]string(nil), lines...)
	prev := GenesisHash
	if i > 0 {
		prev = sha256Of(t, out[i-1])
	}
	for j := i; j < len(out); j++ {
		l := out[j]
		if j == i {
			l = edit(l)
		}
		out[j] = plainSHA256Seal(t, l, uint64(j+1), prev, keepKeyID)
		prev = sha256Of(t, out[j])
	}
	return out
}

// TestForgedLog is issue 21's attack list: each forged trail must fail
// VerifyTrail (moat audit verify --config) with the named kind. With the
// old plain SHA-256 chain, "edited and re-hashed", "cut tail" and "cut
// head" all verified (exit 0).
func TestForgedLog(t *testing.T) {
	edit := func(l string) string { return strings.Replace(l, `"client":"app"`, `"client":"bob"`, 1) }
	cases := []struct {
		name   string
		forge  func(t *testing.T, cfg Config, lines []string) []string
		kind   string
		detail string
	}{
		{"edited and re-hashed with plain SHA-256", func(t *testing.T, _ Config, l []string) []string {
			return rehashFrom(t, l, 4, edit, true)
		}, KindEdited, "without the chain key"},
		{"edited and re-hashed in the old format (key_id dropped)", func(t *testing.T, _ Config, l []string) []string {
			return rehashFrom(t, l, 4, edit, false)
		}, KindDowngraded, "plain SHA-256"},
		{"whole log rewritten in the old format", func(t *testing.T, _ Config, l []string) []string {
			return rehashFrom(t, l, 0, edit, false)
		}, KindUnauthenticated, "old unkeyed format"},
		{"edited and re-sealed with a guessed key", func(t *testing.T, cfg Config, l []string) []string {
			k, _ := NewChainKey([]byte("attacker-guessed-key-0123456789"))
			s := newSealer(k)
			s.keyID = keyFor(t, cfg.Path).ID() // claim the real key's id
			out := append([]string(nil), l...)
			p := newLineParser(keyFor(t, cfg.Path))
			prev := p.parse([]byte(out[3])).hash
			for j := 4; j < len(out); j++ {
				body := chainSuffix.ReplaceAllString(out[j], "}")
				if j == 4 {
					body = edit(body)
				}
				line, h := s.seal(nil, []byte(body), uint64(j+1), prev)
				out[j], prev = strings.TrimSuffix(string(line), "\n"), h
			}
			return out
		}, KindEdited, "does not match its keyed hash"},
		{"tail cut", func(t *testing.T, _ Config, l []string) []string {
			return l[:len(l)-2]
		}, KindCutTail, "records 9 to 10 were cut"},
		{"last record cut", func(t *testing.T, _ Config, l []string) []string {
			return l[:len(l)-1]
		}, KindCutTail, "records 10 to 10 were cut"},
		{"every record cut", func(t *testing.T, _ Config, l []string) []string {
			return nil
		}, KindCutTail, "every record was cut"},
		{"head cut", func(t *testing.T, _ Config, l []string) []string {
			return l[3:]
		}, KindCutHead, "records 1 to 3 are missing"},
		{"tail cut and checkpoint deleted", func(t *testing.T, cfg Config, l []string) []string {
			os.Remove(checkpointPath(cfg))
			return l[:len(l)-2]
		}, KindNoCheckpoint, "cannot be ruled out"},
		{"tail cut and checkpoint forged", func(t *testing.T, cfg Config, l []string) []string {
			k, _ := NewChainKey([]byte("attacker-guessed-key-0123456789"))
			line := MarshalCheckpoint(Checkpoint{Seq: 8, Head: sha256Of(t, l[7])}, k)
			os.WriteFile(checkpointPath(cfg), line, 0o600)
			return l[:8]
		}, KindBadCheckpoint, "chain key id"},
		{"tail cut and checkpoint edited", func(t *testing.T, cfg Config, l []string) []string {
			b, _ := os.ReadFile(checkpointPath(cfg))
			os.WriteFile(checkpointPath(cfg), []byte(strings.Replace(string(b), `"seq":10`, `"seq":8`, 1)), 0o600)
			return l[:8]
		}, KindBadCheckpoint, "mac does not match"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, lines := trail(t, 10)
			if rep, err := VerifyTrail(context.Background(), cfg, TrailOptions{}); err != nil || rep.Checkpoint == nil || rep.Checkpoint.Seq != 10 || rep.Keyed != 10 {
				t.Fatalf("intact trail: %+v %v", rep, err)
			}
			forged := c.forge(t, cfg, lines)
			if len(forged) == 0 {
				os.WriteFile(cfg.Path, nil, 0o600)
			} else {
				writeLines(t, cfg.Path, forged)
			}
			rep, err := VerifyTrail(context.Background(), cfg, TrailOptions{})
			if !errors.Is(err, ErrChainBroken) || rep.OK() {
				t.Fatalf("forged trail passed: %+v %v", rep, err)
			}
			if rep.Problem.Kind != c.kind || !strings.Contains(rep.Problem.Detail, c.detail) {
				t.Fatalf("problem %s, want kind %s mentioning %q", rep.Problem, c.kind, c.detail)
			}
			// moat refuses to continue such a trail too (except the ones
			// whose end is intact, which verify catches).
			if l, err := Open(cfg, Options{}); err == nil {
				l.Close()
				switch c.kind {
				case KindCutHead, KindEdited, KindDowngraded:
				default:
					t.Fatalf("Open continued a trail verify rejects (%s)", c.kind)
				}
			}
		})
	}
}

// TestOpenRefusesCutTrail: records cut while moat was down must not be
// hidden by the next checkpoint.
func TestOpenRefusesCutTrail(t *testing.T) {
	cases := []struct {
		name string
		do   func(t *testing.T, cfg Config, lines []string)
	}{
		{"tail cut", func(t *testing.T, cfg Config, l []string) { writeLines(t, cfg.Path, l[:3]) }},
		{"checkpoint deleted", func(t *testing.T, cfg Config, l []string) { os.Remove(checkpointPath(cfg)) }},
		{"checkpoint of another trail", func(t *testing.T, cfg Config, l []string) {
			o := cfg
			o.Path = cfg.Path + "-other"
			os.Remove(checkpointPath(cfg))
			lo := mustOpen(t, o, Options{})
			lo.Close()
			writeLines(t, cfg.Path, l)
		}},
		{"last record replaced", func(t *testing.T, cfg Config, l []string) {
			k := keyFor(t, cfg.Path)
			p := newLineParser(k)
			prev := p.parse([]byte(l[3])).hash
			line, _ := newSealer(k).seal(nil, []byte(`{"request_id":"evil"}`), 5, prev)
			l[4] = strings.TrimSuffix(string(line), "\n")
			writeLines(t, cfg.Path, l)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, lines := trail(t, 5)
			c.do(t, cfg, lines)
			l, err := Open(cfg, Options{})
			if err == nil {
				l.Close()
				t.Fatal("Open continued the trail")
			}
			if !errors.Is(err, ErrCheckpoint) {
				t.Fatalf("Open: %v, want ErrCheckpoint", err)
			}
			// The operator's way out: verify, then reseal on purpose.
			if _, _, err := Reseal(context.Background(), cfg, TrailOptions{}); err != nil {
				t.Fatalf("Reseal: %v", err)
			}
			l = mustOpen(t, cfg, Options{})
			if err := l.Write(context.Background(), rec("after")); err != nil {
				t.Fatal(err)
			}
			l.Close()
			if rep, err := VerifyTrail(context.Background(), cfg, TrailOptions{}); err != nil {
				t.Fatalf("after reseal: %+v %v", rep, err)
			}
		})
	}
}

// TestLegacyTrailIsSealed: a trail in the old plain SHA-256 format fails
// verification on its own; moat continues it with keyed records, after
// which it verifies (with a note), and an edit of the old records is then
// caught by the first keyed record's link.
func TestLegacyTrailIsSealed(t *testing.T) {
	cfg, lines := trail(t, 4)
	legacy := rehashFrom(t, lines, 0, func(s string) string { return s }, false)
	writeLines(t, cfg.Path, legacy)
	os.Remove(checkpointPath(cfg))
	rep, err := VerifyTrail(context.Background(), cfg, TrailOptions{})
	if !errors.Is(err, ErrChainBroken) || rep.Problem.Kind != KindUnauthenticated {
		t.Fatalf("old-format trail: %+v %v", rep, err)
	}
	l := mustOpen(t, cfg, Options{})
	r := rec("sealing")
	if err := l.Write(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if r.Seq != 5 || r.PrevHash != sha256Of(t, legacy[3]) || r.KeyID == "" {
		t.Fatalf("first keyed record does not continue the old chain: %+v", r)
	}
	rep, err = VerifyTrail(context.Background(), cfg, TrailOptions{})
	if err != nil || rep.Legacy != 4 || rep.Keyed != 1 || len(rep.Notes) == 0 || !strings.Contains(strings.Join(rep.Notes, "\n"), "old unkeyed format") {
		t.Fatalf("sealed trail: %+v %v", rep, err)
	}
	// Re-forging an old record is now caught at the keyed record.
	all := readLines(t, cfg.Path)
	forged := rehashFrom(t, all[:4], 1, func(s string) string { return strings.Replace(s, `"app"`, `"bob"`, 1) }, false)
	writeLines(t, cfg.Path, append(forged, all[4]))
	rep, err = VerifyTrail(context.Background(), cfg, TrailOptions{})
	if !errors.Is(err, ErrChainBroken) || rep.Problem.Kind != KindEdited || rep.Problem.Seq != 4 {
		t.Fatalf("re-forged old record: %+v %v", rep, err)
	}
}

func TestWrongKey(t *testing.T) {
	cfg, _ := trail(t, 3)
	os.WriteFile(chainKeyFile(cfg), []byte("another-key-of-enough-length-1234\n"), 0o600)
	rep, err := VerifyTrail(context.Background(), cfg, TrailOptions{})
	if !errors.Is(err, ErrChainBroken) || rep.Problem.Kind != KindBadCheckpoint {
		t.Fatalf("%+v %v", rep, err)
	}
	os.Remove(checkpointPath(cfg))
	rep, err = VerifyTrail(context.Background(), cfg, TrailOptions{})
	if !errors.Is(err, ErrChainBroken) || rep.Problem.Kind != KindWrongKey || rep.Problem.Line != 1 {
		t.Fatalf("%+v %v", rep, err)
	}
	if _, err := Open(cfg, Options{}); !errors.Is(err, ErrCorruptTail) || !strings.Contains(err.Error(), "move the trail") {
		t.Fatalf("Open with another key: %v", err)
	}
	os.Remove(chainKeyFile(cfg))
	if _, err := VerifyTrail(context.Background(), cfg, TrailOptions{}); !errors.Is(err, ErrNoChainKey) {
		t.Fatalf("verify without key: %v", err)
	}
	if _, err := os.Stat(chainKeyFile(cfg)); !os.IsNotExist(err) {
		t.Fatal("verify created a key")
	}
}

func TestChainKeyFromEnv(t *testing.T) {
	dir := t.TempDir()
	cfg := testCfg(t, dir, `chain_key_env = "MOAT_TEST_CHAIN_KEY"`)
	t.Setenv("MOAT_TEST_CHAIN_KEY", "")
	if _, err := Open(cfg, Options{}); !errors.Is(err, ErrNoChainKey) {
		t.Fatalf("Open without the env key: %v", err)
	}
	t.Setenv("MOAT_TEST_CHAIN_KEY", "short")
	if _, err := Open(cfg, Options{}); err == nil || !strings.Contains(err.Error(), "at least 16") {
		t.Fatalf("Open with a short key: %v", err)
	}
	t.Setenv("MOAT_TEST_CHAIN_KEY", "a-chain-key-from-the-environment")
	l := mustOpen(t, cfg, Options{})
	l.Write(context.Background(), rec("a"))
	l.Close()
	if _, err := os.Stat(chainKeyFile(Config{Path: cfg.Path})); !os.IsNotExist(err) {
		t.Fatal("a key file was created although the key comes from the environment")
	}
	if rep, err := VerifyTrail(context.Background(), cfg, TrailOptions{}); err != nil || rep.Keyed != 1 {
		t.Fatalf("%+v %v", rep, err)
	}
}

// TestRotatedTrailVerifies: rotation (max_size_mb) keeps the keyed chain
// and the checkpoint exact across files.
func TestRotatedTrailVerifies(t *testing.T) {
	cfg, files := rotatedTrail(t)
	rep, err := VerifyTrail(context.Background(), cfg, TrailOptions{})
	if err != nil || len(rep.Files) != len(files) || len(files) < 3 || rep.Keyed != 10 || rep.Checkpoint == nil || rep.Checkpoint.Seq != 10 {
		t.Fatalf("%+v %v", rep, err)
	}
	// Removing the oldest rotated file is a cut head unless allowed.
	rep, err = VerifyTrail(context.Background(), cfg, TrailOptions{Files: files[1:]})
	if !errors.Is(err, ErrChainBroken) || rep.Problem.Kind != KindCutHead {
		t.Fatalf("%+v %v", rep, err)
	}
	rep, err = VerifyTrail(context.Background(), cfg, TrailOptions{Files: files[1:], FromSeq: rep0(t, files[1])})
	if err != nil || !rep.Anchored {
		t.Fatalf("%+v %v", rep, err)
	}
	// Removing the newest file is a cut tail.
	rep, err = VerifyTrail(context.Background(), cfg, TrailOptions{Files: files[:len(files)-1]})
	if !errors.Is(err, ErrChainBroken) || rep.Problem.Kind != KindCutTail {
		t.Fatalf("%+v %v", rep, err)
	}
}

func TestExpectedCheckpoint(t *testing.T) {
	cfg, lines := trail(t, 6)
	head4 := newLineParser(keyFor(t, cfg.Path)).parse([]byte(lines[3])).hash
	v, _ := strconv.ParseUint(head4[:12], 16, 64)
	for _, c := range []struct {
		arg, kind string
	}{
		{"4:" + head4[:12], ""},
		{"4:" + head4, ""},
		{fmt.Sprintf("4:=%d", v), ""},
		{"4:" + strings.Repeat("0", 12), KindCheckpointMismatch},
		{"9:" + head4[:12], KindCutTail},
	} {
		t.Run(c.arg, func(t *testing.T) {
			cp, err := ParseExpect(c.arg)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := VerifyTrail(context.Background(), cfg, TrailOptions{Expect: []SourcedCheckpoint{cp}})
			if c.kind == "" {
				if err != nil {
					t.Fatalf("%+v %v", rep, err)
				}
				return
			}
			if !errors.Is(err, ErrChainBroken) || rep.Problem.Kind != c.kind {
				t.Fatalf("%+v %v", rep, err)
			}
		})
	}
	for _, bad := range []string{"", "4", "x:abc", "4:abc", "4:zzzzzzzzzzzz", "4:=99999999999999999", "4:=12x"} {
		if _, err := ParseExpect(bad); err == nil {
			t.Errorf("ParseExpect(%q) accepted", bad)
		}
	}
}

// TestParseExpectHexHeads: a hex head is read as hex whatever digit it
// starts with (a head starting with "d" was once read as the decimal
// form, which made TestExpectedCheckpoint fail for one trail in 16).
func TestParseExpectHexHeads(t *testing.T) {
	for _, head := range []string{"d513dc5364e2", "d12345678901", "0123456789ab", "ffffffffffff", "D513DC5364E2"} {
		cp, err := ParseExpect("4:" + head)
		if err != nil || cp.Seq != 4 || cp.Head != strings.ToLower(head) {
			t.Errorf("ParseExpect(4:%s) = %+v, %v", head, cp, err)
		}
	}
	cp, err := ParseExpect("4:=255")
	if err != nil || cp.Head != "0000000000ff" {
		t.Errorf("ParseExpect(4:=255) = %+v, %v", cp, err)
	}
}
