package keysource

import (
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/moat-gateway/moat/host/internal/logbuf"
)

// Test-only fake keys: not Anthropic-shaped on purpose.
const (
	keyA = "test-upstream-key-AAAAAAAAAAAAAAAA"
	keyB = "test-upstream-key-BBBBBBBBBBBBBBBB"
	keyC = "test-upstream-key-CCCCCCCCCCCCCCCC"
	keyD = "test-upstream-key-DDDDDDDDDDDDDDDD"
	keyE = "test-upstream-key-EEEEEEEEEEEEEEEE"
)

// syncBuf is a log sink safe for concurrent writers.
type syncBuf = logbuf.Buffer

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// renameReplace writes content the way editors and secret managers do: a
// temporary file renamed over the target.
func renameReplace(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	writeFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// waitKey waits up to 5 s for Key to return want and says how long it took.
func waitKey(t *testing.T, s *Source, want string) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < 5*time.Second {
		if s.Key() == want {
			return time.Since(start)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("key not rotated within 5s (fingerprint %s, want %s)", Fingerprint(s.Key()), Fingerprint(want))
	return 0
}

func TestRotationUnderLoad(t *testing.T) {
	defer goleak.VerifyNone(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "anthropic.key")
	writeFile(t, path, keyA+"\n")
	logs := &syncBuf{}
	s, err := New(Config{File: path}, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Key() != keyA {
		t.Fatalf("initial key fingerprint %s", Fingerprint(s.Key()))
	}

	known := map[string]bool{keyA: true, keyB: true, keyC: true}
	var stop atomic.Bool
	var reads, bad atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; !stop.Load(); n++ {
				if !known[s.Key()] {
					bad.Add(1)
				}
				reads.Add(1)
				if n%64 == 0 {
					runtime.Gosched()
				}
			}
		}()
	}

	renameReplace(t, path, keyB+"\n")
	t.Logf("rename-replace seen after %v", waitKey(t, s, keyB))
	writeFile(t, path, keyC)
	t.Logf("in-place write seen after %v", waitKey(t, s, keyC))

	// An emptied file keeps the last good key, and says why.
	writeFile(t, path, "")
	time.Sleep(300 * time.Millisecond)
	if s.Key() != keyC {
		t.Fatal("an empty key file replaced the key")
	}
	// So does a removed one.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if s.Key() != keyC {
		t.Fatal("a removed key file replaced the key")
	}
	stop.Store(true)
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d of %d reads returned an empty or unknown key", bad.Load(), reads.Load())
	}
	if reads.Load() == 0 {
		t.Fatal("readers did not run")
	}

	out := logs.String()
	for _, k := range []string{keyA, keyB, keyC} {
		if strings.Contains(out, k) {
			t.Fatalf("log contains a key:\n%s", out)
		}
	}
	for _, want := range []string{"upstream key rotated", Fingerprint(keyC), "keeping the current key", "empty", "does not exist"} {
		if !strings.Contains(out, want) {
			t.Fatalf("log lacks %q:\n%s", want, out)
		}
	}
	sec := s.Secrets()
	if len(sec) != 3 || sec[0] != keyC || sec[1] != keyB || sec[2] != keyA {
		t.Fatalf("Secrets has %d entries in the wrong order", len(sec))
	}
	// Back again after the file reappears.
	writeFile(t, path, keyA)
	waitKey(t, s, keyA)
}

// TestKubernetesSymlinkSwap mimics a mounted Secret: key -> ..data/key,
// ..data -> ..<timestamp>; an update renames a new ..data symlink over the
// old one and never touches "key" itself.
func TestKubernetesSymlinkSwap(t *testing.T) {
	defer goleak.VerifyNone(t)
	dir := t.TempDir()
	mkgen := func(name, key string) {
		if err := os.Mkdir(filepath.Join(dir, name), 0o700); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, name, "key"), key)
	}
	mkgen("..2026_01", keyA)
	if err := os.Symlink("..2026_01", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..data/key", filepath.Join(dir, "key")); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{File: filepath.Join(dir, "key")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Key() != keyA {
		t.Fatal("initial key not read through the symlinks")
	}
	mkgen("..2026_02", keyB)
	if err := os.Symlink("..2026_02", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "..2026_01")); err != nil {
		t.Fatal(err)
	}
	t.Logf("symlink swap seen after %v", waitKey(t, s, keyB))
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "k")
	writeFile(t, path, keyA)
	s, err := New(Config{File: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Stop the watcher so only Reload can change the key.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	writeFile(t, path, keyB)
	time.Sleep(100 * time.Millisecond)
	if s.Key() != keyA {
		t.Fatal("key changed after Close without Reload")
	}
	if err := s.Reload(); err != nil || s.Key() != keyB {
		t.Fatalf("Reload = %v", err)
	}
	cases := []struct {
		name, content, want string
	}{
		{"empty", "", "empty"},
		{"blank lines", "\n\n  \n", "empty"},
		{"two keys", keyC + "\n" + keyD + "\n", "one key"},
		{"header injection", keyC + "\r\nX-Evil: 1", "one key"},
		{"huge", strings.Repeat("k", 5000), "larger than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			writeFile(t, path, tc.content)
			err := s.Reload()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Reload = %v, want error containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), keyC) {
				t.Fatal("error holds the file's content")
			}
			if s.Key() != keyB {
				t.Fatal("a bad file replaced the key")
			}
		})
	}
	writeFile(t, path, "  "+keyE+"  \n")
	if err := s.Reload(); err != nil || s.Key() != keyE {
		t.Fatalf("surrounding whitespace not trimmed: %v", err)
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	writeFile(t, empty, "\n")
	t.Setenv("MOAT_TEST_EMPTY_KEY", "")
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"missing file", Config{File: filepath.Join(dir, "nope")}, "does not exist"},
		{"missing dir", Config{File: filepath.Join(dir, "nodir", "k")}, "does not exist"},
		{"empty file", Config{File: empty}, "empty"},
		{"empty env", Config{Env: "MOAT_TEST_EMPTY_KEY"}, "MOAT_TEST_EMPTY_KEY"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.cfg, nil)
			if err == nil {
				s.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q lacks %q", err, tc.want)
			}
		})
	}
}

func TestEnv(t *testing.T) {
	t.Setenv("MOAT_TEST_UPSTREAM_KEY", " "+keyA+"\n")
	s, err := New(Config{Env: "MOAT_TEST_UPSTREAM_KEY"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Key() != keyA {
		t.Fatal("env key not read")
	}
	if err := s.Reload(); err != nil || s.Key() != keyA {
		t.Fatalf("Reload with env = %v", err)
	}
	// The default (ANTHROPIC_API_KEY) is the plan's; no source is an error.
	if _, err := New(Config{}, nil); err == nil || !strings.Contains(err.Error(), "no upstream key source") {
		t.Fatalf("New with no source: %v", err)
	}
}

func TestFingerprint(t *testing.T) {
	f := Fingerprint(keyA)
	if !strings.HasPrefix(f, "sha256:") || len(f) != len("sha256:")+12 {
		t.Fatalf("fingerprint %q", f)
	}
	if strings.Contains(f, keyA[len(keyA)-4:]) {
		t.Fatal("fingerprint shows the key's tail")
	}
	if f == Fingerprint(keyB) || f != Fingerprint(keyA) {
		t.Fatal("fingerprint not a function of the key")
	}
}

func BenchmarkKey(b *testing.B) {
	b.Setenv("MOAT_TEST_UPSTREAM_KEY", keyA)
	s, err := New(Config{Env: "MOAT_TEST_UPSTREAM_KEY"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = s.Key()
		}
	})
}
