package e2e

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// lcBuildMoat builds the moat CLI into a temp dir, with -race when the
// test binary has it, so the packages compiled for the test are reused
// and only the link is new work.
func lcBuildMoat(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "moat")
	args := []string{"build", "-o", bin}
	if lcRace {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "../../cmd/moat")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building moat: %v\n%s", err, out)
	}
	return bin
}

// lcRun runs the CLI with args and extra environment, and returns its exit
// code, stdout and stderr.
func lcRun(t *testing.T, bin string, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("running moat %v: %v", args, err)
	}
	return code, out.String(), errb.String()
}

func lcWrite(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}

// TestDoctorAndScanCLI runs the real moat binary: doctor on a config that
// follows the production checklist and on one that breaks it, and scan on
// a front-end bundle with a planted (fake) key and on a clean one.
func TestDoctorAndScanCLI(t *testing.T) {
	bin := lcBuildMoat(t)
	// A fake key, assembled at run time so no key-shaped literal is
	// committed outside testdata.
	fakeKey := "sk-" + "ant-" + "api03-" + strings.Repeat("Fk3_", 20) + "TESTONLY"

	t.Run("doctor good config", func(t *testing.T) {
		dir := t.TempDir()
		keyFile := filepath.Join(dir, "anthropic.key")
		lcWrite(t, keyFile, fakeKey+"\n", 0o600)
		cfg := filepath.Join(dir, "config.toml")
		lcWrite(t, cfg, fmt.Sprintf(`environment = "production"
[server]
listen = "127.0.0.1:8080"
[upstream]
base_url = "https://api.anthropic.com"
api_key_file = %q
[admin]
listen = "127.0.0.1:9090"
token_env = "MOAT_LC_ADMIN_TOKEN"
[audit]
path = %q
[limits]
user_rate = "20-M"
[pipeline]
input = ["strip-markers"]
output = ["secret-redact"]
[[plugins]]
name = "strip-markers"
builtin = "strip-markers"
[[plugins]]
name = "secret-redact"
builtin = "secret-redact"
[[clients]]
id = "app"
key_sha256 = %q
wrap_user_input = true
[[budgets]]
scope = "global"
usd = 100
alerts = [0.5, 0.8]
`, keyFile, filepath.Join(dir, "audit", "audit.jsonl"), strings.Repeat("ab", 32)), 0o600)
		code, out, errOut := lcRun(t, bin, []string{"MOAT_LC_ADMIN_TOKEN=" + rand.Text() + rand.Text()}, "doctor", "--config", cfg)
		if code != 0 {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		if strings.Contains(out, "FAIL") || !strings.Contains(out, ", 0 fail") {
			t.Fatalf("a check failed:\n%s", out)
		}
		for _, want := range []string{"upstream key source", "audit fails closed", "admin token", "input sanitizers"} {
			if !strings.Contains(out, "PASS  "+want) {
				t.Errorf("no PASS for %q:\n%s", want, out)
			}
		}
		lcNoSecret(t, "doctor's output", out+errOut, fakeKey)
	})

	t.Run("doctor bad config", func(t *testing.T) {
		dir := t.TempDir()
		keyFile := filepath.Join(dir, "anthropic.key")
		lcWrite(t, keyFile, fakeKey+"\n", 0o644) // world-readable
		cfg := filepath.Join(dir, "config.toml")
		lcWrite(t, cfg, fmt.Sprintf(`[server]
listen = "0.0.0.0:8080"
[upstream]
base_url = "http://api.example.com"
api_key_file = %q
[admin]
listen = "0.0.0.0:9090"
token_env = "MOAT_LC_UNSET_TOKEN"
[audit]
path = %q
fail_open = true
[[clients]]
id = "app"
key_sha256 = %q
`, keyFile, filepath.Join(dir, "audit.jsonl"), strings.Repeat("cd", 32)), 0o600)
		code, out, errOut := lcRun(t, bin, []string{"MOAT_LC_UNSET_TOKEN="}, "doctor", "--config", cfg)
		if code != 1 {
			t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		for _, want := range []string{
			"FAIL  upstream key file mode",
			"FAIL  upstream over TLS",
			"FAIL  audit fails closed",
			"FAIL  admin listener",
			"FAIL  admin token",
			"FAIL  input sanitizers",
			"WARN  budgets and alerts",
			"WARN  environment named",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("doctor output lacks %q:\n%s", want, out)
			}
		}
		if !strings.Contains(out, "fix: chmod 600 "+keyFile) {
			t.Errorf("no fix given for the key file:\n%s", out)
		}
		lcNoSecret(t, "doctor's output", out+errOut, fakeKey)
	})

	t.Run("doctor invalid config", func(t *testing.T) {
		cfg := filepath.Join(t.TempDir(), "config.toml")
		lcWrite(t, cfg, "[server]\nlisen = \"x\"\n", 0o600)
		code, out, errOut := lcRun(t, bin, nil, "doctor", "--config", cfg)
		if code != 1 || !strings.Contains(errOut, "server.lisen: unknown key") {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
	})

	t.Run("scan bundle with a planted key", func(t *testing.T) {
		dir := t.TempDir()
		lcWrite(t, filepath.Join(dir, "dist", "assets", "index-4f2a.js"),
			"(()=>{const a=1;\nconst client={apiKey:\""+fakeKey+"\"};fetch(\"/v1/messages\")})();\n", 0o644)
		lcWrite(t, filepath.Join(dir, "dist", "index.html"), "<!doctype html><script src=\"/assets/index-4f2a.js\"></script>\n", 0o644)
		lcWrite(t, filepath.Join(dir, ".env.production"), "VITE_ANTHROPIC_API_KEY="+fakeKey+"\n", 0o644)
		code, out, errOut := lcRun(t, bin, nil, "scan", dir)
		if code != 1 {
			t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
		for _, want := range []string{
			filepath.Join(dir, "dist", "assets", "index-4f2a.js") + ":2:23: anthropic-key: sk-ant-api03-…ONLY",
			".env.production:1:1: public-env-key",
			"rotate any key found here",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("scan output lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "index.html") {
			t.Errorf("clean file reported:\n%s", out)
		}
		lcNoSecret(t, "scan's output", out+errOut, fakeKey)
	})

	t.Run("scan clean bundle", func(t *testing.T) {
		dir := t.TempDir()
		lcWrite(t, filepath.Join(dir, "dist", "app.js"), "const base='/api/claude';fetch(base)\n", 0o644)
		code, out, errOut := lcRun(t, bin, nil, "scan", dir)
		if code != 0 || !strings.Contains(out, "no Anthropic keys found") {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
	})

	t.Run("scan missing path", func(t *testing.T) {
		code, _, errOut := lcRun(t, bin, nil, "scan", filepath.Join(t.TempDir(), "nope"))
		if code != 1 || !strings.Contains(errOut, "moat scan:") {
			t.Fatalf("exit %d, stderr %q", code, errOut)
		}
		if code, _, _ := lcRun(t, bin, nil, "scan"); code != 2 {
			t.Fatalf("scan without a path: exit %d, want 2", code)
		}
	})
}
