package audit

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/verify (trails and golden reports)")

// goldenSecret is the chain key of testdata/verify (a test fixture).
const goldenSecret = "golden-chain-key-for-testdata-only"

// goldenTrail builds n keyed records (deterministic: fixed times and key),
// the first legacy of them in the old plain SHA-256 format.
func goldenTrail(t *testing.T, n, legacy int) []string {
	t.Helper()
	k, err := NewChainKey([]byte(goldenSecret))
	if err != nil {
		t.Fatal(err)
	}
	s := newSealer(k)
	prev := GenesisHash
	var lines []string
	for i := 1; i <= n; i++ {
		r := rec(fmt.Sprintf("req-%d", i))
		r.Time = time.Date(2026, 12, 4, 12, 0, i, 0, time.UTC)
		r.Environment = "golden"
		body, err := marshalRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		var line []byte
		var h string
		if i <= legacy {
			line = []byte(plainSHA256Seal(t, strings.TrimSuffix(string(s.sealString(body)), "\n"), uint64(i), prev, false))
			h = sha256Of(t, string(line))
		} else {
			line, h = s.seal(nil, body, uint64(i), prev)
			line = bytes.TrimSuffix(line, []byte("\n"))
		}
		lines = append(lines, string(line))
		prev = h
	}
	return lines
}

// sealString seals body with placeholders so plainSHA256Seal can re-seal
// it in the old format.
func (s *sealer) sealString(body []byte) []byte {
	line, _ := s.seal(nil, body, 1, GenesisHash)
	return line
}

func goldenCheckpoint(t *testing.T, lines []string, seq int) []byte {
	k, _ := NewChainKey([]byte(goldenSecret))
	p := newLineParser(k)
	li := p.parse([]byte(lines[seq-1]))
	return MarshalCheckpoint(Checkpoint{Seq: uint64(seq), Head: li.hash, Time: time.Date(2026, 12, 4, 12, 1, 0, 0, time.UTC), Log: "/var/lib/moat/audit.jsonl"}, k)
}

// goldenCases build the trails of testdata/verify; each is a .jsonl file,
// an optional .checkpoint file and the .golden report of moat audit verify.
var goldenCases = []struct {
	name  string
	build func(t *testing.T) (lines []string, checkpoint []byte)
}{
	{"intact", func(t *testing.T) ([]string, []byte) {
		l := goldenTrail(t, 5, 0)
		return l, goldenCheckpoint(t, l, 5)
	}},
	{"records-after-checkpoint", func(t *testing.T) ([]string, []byte) {
		l := goldenTrail(t, 5, 0)
		return l, goldenCheckpoint(t, l, 3)
	}},
	{"old-format-sealed", func(t *testing.T) ([]string, []byte) {
		l := goldenTrail(t, 5, 2)
		return l, goldenCheckpoint(t, l, 5)
	}},
	{"old-format-only", func(t *testing.T) ([]string, []byte) {
		return goldenTrail(t, 3, 3), nil
	}},
	{"edited-rehashed-sha256", func(t *testing.T) ([]string, []byte) {
		l := goldenTrail(t, 5, 0)
		cp := goldenCheckpoint(t, l, 5)
		return rehashFrom(t, l, 2, func(s string) string { return strings.Replace(s, `"client":"app"`, `"client":"bob"`, 1) }, true), cp
	}},
	{"downgraded", func(t *testing.T) ([]string, []byte) {
		l := goldenTrail(t, 5, 0)
		cp := goldenCheckpoint(t, l, 5)
		return rehashFrom(t, l, 2, func(s string) string { return strings.Replace(s, `"client":"app"`, `"client":"bob"`, 1) }, false), cp
	}},
	{"cut-tail", func(t *testing.T) ([]string, []byte) {
		l := goldenTrail(t, 5, 0)
		return l[:3], goldenCheckpoint(t, l, 5)
	}},
	{"cut-head", func(t *testing.T) ([]string, []byte) {
		l := goldenTrail(t, 5, 0)
		return l[2:], goldenCheckpoint(t, l, 5)
	}},
	{"no-checkpoint", func(t *testing.T) ([]string, []byte) {
		return goldenTrail(t, 5, 0), nil
	}},
	{"deleted-middle", func(t *testing.T) ([]string, []byte) {
		l := goldenTrail(t, 5, 0)
		return append(l[:2:2], l[3:]...), goldenCheckpoint(t, l, 5)
	}},
}

var elapsed = regexp.MustCompile(` in [0-9.]+[µnm]?s \([0-9]+ records/s\)`)

// TestGoldenVerify runs Verify over the fixed trails of testdata/verify and
// compares the report moat audit verify prints (timing masked) with the
// .golden files. go test -run TestGoldenVerify -update rewrites them.
func TestGoldenVerify(t *testing.T) {
	dir := filepath.Join("testdata", "verify")
	k, _ := NewChainKey([]byte(goldenSecret))
	if *update {
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "chain.key"), []byte(goldenSecret+"\n"), 0o644)
	}
	for _, c := range goldenCases {
		t.Run(c.name, func(t *testing.T) {
			trailPath := filepath.Join(dir, c.name+".jsonl")
			cpPath := filepath.Join(dir, c.name+".checkpoint")
			if *update {
				lines, cp := c.build(t)
				writeLines(t, trailPath, lines)
				os.Remove(cpPath)
				if cp != nil {
					os.WriteFile(cpPath, cp, 0o644)
				}
			}
			var cps []SourcedCheckpoint
			if line, err := (FileStore{Path: cpPath}).Load(context.Background()); err != nil {
				t.Fatal(err)
			} else if line != nil {
				cp, err := ParseCheckpoint(line, k)
				if err != nil {
					t.Fatal(err)
				}
				cps = append(cps, SourcedCheckpoint{Checkpoint: cp, From: "file " + filepath.ToSlash(cpPath)})
			}
			rep, err := Verify(VerifyOptions{Files: []string{filepath.ToSlash(trailPath)}, Key: k, Checkpoints: cps, RequireCheckpoint: true})
			var out bytes.Buffer
			WriteReport(&out, rep, err)
			got := elapsed.ReplaceAll(out.Bytes(), []byte(" in <elapsed>"))
			golden := filepath.Join(dir, c.name+".golden")
			if *update {
				os.WriteFile(golden, got, 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("report differs from %s:\n--- got\n%s--- want\n%s", golden, got, want)
			}
			// The trails regenerate byte for byte (the format is stable).
			lines, cp := c.build(t)
			if b, _ := os.ReadFile(trailPath); string(b) != strings.Join(lines, "\n")+"\n" && len(lines) > 0 {
				t.Fatalf("%s no longer matches what the current code writes", trailPath)
			}
			if b, _ := os.ReadFile(cpPath); cp != nil && !bytes.Equal(b, cp) {
				t.Fatalf("%s no longer matches what the current code writes", cpPath)
			}
		})
	}
}
