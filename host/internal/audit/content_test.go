package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const testKey = "0123456789abcdef0123456789abcdef"

// writeOne writes r with a fresh logger and returns the line as written
// and decoded.
func writeOne(t *testing.T, extra string, opts Options, r *Record) (string, Record) {
	t.Helper()
	cfg := testCfg(t, t.TempDir(), extra)
	l := mustOpen(t, cfg, opts)
	if err := l.Write(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	l.Close()
	line := readLines(t, cfg.Path)[0]
	var got Record
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Fatal(err)
	}
	return line, got
}

func TestContentModes(t *testing.T) {
	t.Setenv("MOAT_AUDIT_HMAC_KEY", testKey)
	in := "Hello, contact me at alice@example.com, my key is sk-proj-abcdefghijklmnopqrstuvwx"
	out := "Sure, Alice."
	cases := []struct {
		mode  string
		check func(t *testing.T, line string, r Record)
	}{
		{"off", func(t *testing.T, line string, r Record) {
			if r.ContentMode != "" || r.InputHMAC != "" || r.InputContent != "" || r.OutputContent != "" ||
				strings.Contains(line, "Hello") || strings.Contains(line, "Alice") {
				t.Fatalf("content written with content off: %s", line)
			}
		}},
		{"hmac", func(t *testing.T, line string, r Record) {
			if r.ContentMode != "hmac" || len(r.InputHMAC) != 64 || len(r.OutputHMAC) != 64 || r.InputHMAC == r.OutputHMAC {
				t.Fatalf("digests missing: %s", line)
			}
			if strings.Contains(line, "Hello") || strings.Contains(line, "alice") || r.InputContent != "" {
				t.Fatalf("text written in hmac mode: %s", line)
			}
		}},
		{"redacted", func(t *testing.T, line string, r Record) {
			if r.ContentMode != "redacted" || !strings.Contains(r.InputContent, "Hello, contact me at") || r.OutputContent != out {
				t.Fatalf("redacted content wrong: %s", line)
			}
			for _, leak := range []string{"alice@example.com", "sk-proj-abcdefghijklmnopqrstuvwx"} {
				if strings.Contains(line, leak) {
					t.Fatalf("%q not redacted: %s", leak, line)
				}
			}
		}},
		{"full", func(t *testing.T, line string, r Record) {
			if r.ContentMode != "full" || r.InputContent != in || r.OutputContent != out {
				t.Fatalf("full content wrong: %s", line)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.mode, func(t *testing.T) {
			r := rec("x")
			r.Input, r.Output = in, out
			// Values planted by the caller in the written content fields are
			// replaced, never trusted.
			r.InputContent, r.InputHMAC, r.ContentMode = "planted", "planted", "planted"
			line, got := writeOne(t, fmt.Sprintf("content = %q", c.mode), Options{}, r)
			if strings.Contains(line, "planted") {
				t.Fatalf("caller-set content field written: %s", line)
			}
			c.check(t, line, got)
		})
	}
}

func TestHMACDigests(t *testing.T) {
	digest := func(t *testing.T, key, text string) string {
		t.Setenv("MOAT_AUDIT_HMAC_KEY", key)
		r := rec("x")
		r.Input = text
		_, got := writeOne(t, `content = "hmac"`, Options{}, r)
		return got.InputHMAC
	}
	a1 := digest(t, testKey, "same text")
	a2 := digest(t, testKey, "same text")
	b := digest(t, testKey, "other text")
	k2 := digest(t, strings.Repeat("k", 32), "same text")
	if a1 != a2 {
		t.Error("equal inputs gave different digests")
	}
	if a1 == b {
		t.Error("different inputs gave equal digests")
	}
	if a1 == k2 {
		t.Error("different keys gave equal digests")
	}

	t.Run("key file", func(t *testing.T) {
		dir := t.TempDir()
		kf := filepath.Join(dir, "key")
		os.WriteFile(kf, []byte(testKey+"\n"), 0o600)
		r := rec("x")
		r.Input = "same text"
		_, got := writeOne(t, fmt.Sprintf("content = \"hmac\"\nhmac_key_file = %q", kf), Options{}, r)
		if got.InputHMAC != a1 {
			t.Error("key file (trailing newline trimmed) digest differs from env key digest")
		}
	})
	t.Run("missing or weak key", func(t *testing.T) {
		dir := t.TempDir()
		for name, extra := range map[string]string{
			"unset env":    "content = \"hmac\"\nhmac_key_env = \"MOAT_TEST_UNSET_KEY\"",
			"missing file": fmt.Sprintf("content = \"hmac\"\nhmac_key_file = %q", filepath.Join(dir, "nope")),
			"short key":    "content = \"hmac\"\nhmac_key_env = \"MOAT_TEST_SHORT_KEY\"",
		} {
			t.Run(name, func(t *testing.T) {
				t.Setenv("MOAT_TEST_SHORT_KEY", "short")
				os.Unsetenv("MOAT_TEST_UNSET_KEY")
				cfg := testCfg(t, t.TempDir(), extra)
				l, err := Open(cfg, Options{})
				if err == nil {
					l.Close()
					t.Fatal("Open succeeded without a usable key")
				}
				if name == "unset env" && !errors.Is(err, ErrNoHMACKey) {
					t.Fatalf("error %v does not wrap ErrNoHMACKey", err)
				}
			})
		}
	})
}

func TestCustomRedactor(t *testing.T) {
	r := rec("x")
	r.Input = "name: Bob"
	_, got := writeOne(t, `content = "redacted"`, Options{Redact: func(s string) string {
		return strings.ReplaceAll(s, "Bob", "[NAME]")
	}}, r)
	if got.InputContent != "name: [NAME]" {
		t.Fatalf("custom redactor not applied: %q", got.InputContent)
	}
}

func TestDefaultRedact(t *testing.T) {
	cases := []struct{ in, leak string }{
		{"mail bob.smith+x@mail.example.co.uk now", "bob.smith+x@mail.example.co.uk"},
		{"key " + "sk-ant-" + "api03-abcdefABCDEF0123456789", "abcdefABCDEF0123456789"},
		{"key sk-proj-0123456789abcdefghij", "0123456789abcdefghij"},
		{"Authorization: Bearer abc.def-ghi_jkl", "abc.def-ghi_jkl"},
		{"aws AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"},
		{"gh ghp_abcdefghijklmnopqrstuvwxyz0123", "ghp_abcdefghijklmnopqrstuvwxyz0123"},
		{"jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_nature", "eyJzdWIiOiIxIn0"},
		{"password=hunter2!", "hunter2"},
		{"api_key: 12345", "12345"},
		{"token " + strings.Repeat("Ab9", 12), strings.Repeat("Ab9", 12)},
		{"card 4111 1111 1111 1111", "4111 1111 1111 1111"},
		{"moat_live_0123456789abcdef", "0123456789abcdef"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got := DefaultRedact(c.in)
			if strings.Contains(got, c.leak) {
				t.Fatalf("DefaultRedact(%q) = %q still holds %q", c.in, got, c.leak)
			}
		})
	}
	if got := DefaultRedact("The weather is nice today."); got != "The weather is nice today." {
		t.Fatalf("plain text changed: %q", got)
	}
}

// TestSecretsNeverWritten plants the configured secrets and key-shaped
// strings in every string field of a record (found by reflection, so a new
// field is covered automatically) and checks no mode writes them.
func TestSecretsNeverWritten(t *testing.T) {
	t.Setenv("MOAT_AUDIT_HMAC_KEY", testKey)
	upstream := "UPSTREAM-SECRET-0f9e8d7c6b5a"
	client := "client-secret-Zz99Yy88Xx77"
	shaped := []string{"sk-ant-" + "api03-NotConfiguredButShaped_0123456789", "moat_k_notconfigured0123456789abc"}
	secrets := func() []string { return []string{upstream, client, ""} }
	plant := "pre " + upstream + " mid " + client + " " + shaped[0] + " " + shaped[1] + " post"

	for _, mode := range []string{"off", "hmac", "redacted", "full"} {
		t.Run(mode, func(t *testing.T) {
			r := &Record{}
			fillStrings(reflect.ValueOf(r).Elem(), plant)
			r.Plugins = []PluginVerdict{{}}
			fillStrings(reflect.ValueOf(&r.Plugins[0]).Elem(), plant)
			// Redactor that keeps everything, so only scrubbing protects.
			opts := Options{Secrets: secrets, Environment: plant, Redact: func(s string) string { return s }}
			line, _ := writeOne(t, fmt.Sprintf("content = %q", mode), opts, r)
			for _, leak := range append([]string{upstream, client}, shaped...) {
				if strings.Contains(line, leak) {
					t.Fatalf("%q written in mode %s: %s", leak, mode, line)
				}
			}
			if mode == "full" && !strings.Contains(line, "pre [SECRET] mid [SECRET]") {
				t.Fatalf("full mode lost the surrounding text: %s", line)
			}
		})
	}
	t.Run("secret containing another", func(t *testing.T) {
		r := rec("x")
		r.Input = "abcdefgh-XYZ and abcdefgh"
		line, _ := writeOne(t, `content = "full"`, Options{Secrets: func() []string { return []string{"abcdefgh", "abcdefgh-XYZ"} }}, r)
		if strings.Contains(line, "XYZ") || strings.Contains(line, "abcdefgh") {
			t.Fatalf("overlapping secrets leaked: %s", line)
		}
	})
	t.Run("caller slice untouched", func(t *testing.T) {
		r := rec("x")
		orig := []PluginVerdict{{Name: "p", Reason: "saw " + upstream}}
		r.Plugins = orig
		writeOne(t, "", Options{Secrets: secrets}, r)
		if r.Plugins[0].Reason != "saw [SECRET]" {
			t.Fatalf("rec not updated to what was written: %+v", r.Plugins)
		}
		if orig[0].Reason != "saw "+upstream {
			// The written copy is scrubbed; the caller's verdicts are not
			// mutated behind its back.
			t.Fatalf("caller's plugin verdicts modified: %+v", r.Plugins)
		}
	})
}

// fillStrings sets every settable string field of v (a struct) to s.
func fillStrings(v reflect.Value, s string) {
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		if f.Kind() == reflect.String && f.CanSet() {
			f.SetString(s)
		}
	}
}

func TestTimeIsUTCNanos(t *testing.T) {
	now := time.Date(2031, 5, 6, 7, 8, 9, 1, time.FixedZone("Y", -7200))
	_, got := writeOne(t, "", Options{Now: func() time.Time { return now }}, rec("x"))
	if !got.Time.Equal(now) || got.Time.Location() != time.UTC {
		t.Fatalf("time %v", got.Time)
	}
}
