package scan

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeKey builds a test-only, Anthropic-shaped key at run time so that no
// tracked file holds one literally.
func fakeKey(kind, tail string) string {
	return "sk-" + "ant-" + kind + "-" + strings.Repeat("TESTONLYfake", 8) + tail
}

var (
	apiKey   = fakeKey("api03", "abcdWXYZ")
	adminKey = fakeKey("admin01", "efghQRST")
)

type bundleFile struct {
	path    string
	content []byte
}

func writeTree(t *testing.T, files []bundleFile) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestScanBundle(t *testing.T) {
	minified := strings.Repeat("var a=1;", 600) + `const k="` + apiKey + `";` + strings.Repeat("b();", 100)
	binary := append(append([]byte("\x00asm\x01\x00\x00\x00"), make([]byte, 120)...), []byte(apiKey)...)
	sourcemap := `{"version":3,"sources":["src/api.ts"],"sourcesContent":["const key = import.meta.env.VITE_ANTHROPIC_API_KEY;\nfetch(url)"],"mappings":"AAAA"}`
	dir := writeTree(t, []bundleFile{
		{"dist/index.html", []byte("<!doctype html>\n<script src=\"/assets/app.min.js\"></script>\n")},
		{"dist/assets/app.min.js", []byte(minified)},
		{"dist/assets/app.js.map", []byte(sourcemap)},
		{"dist/plugin.wasm", binary},
		{".env.production", []byte("VITE_API_URL=https://api.example.com\nVITE_ANTHROPIC_API_KEY=" + apiKey + "\n")},
		{"src/config.ts", []byte("export const cfg = {\n  key: process.env.NEXT_PUBLIC_CLAUDE_KEY,\n};\n")},
		{"app.json", []byte(`{"expo":{"extra":{"EXPO_PUBLIC_ANTHROPIC_KEY": "` + apiKey + `"}}}`)},
		{"ops/notes.txt", []byte("rotate\nthe admin key " + adminKey + " monthly\n")},
		{"node_modules/leaky/index.cjs", []byte("module.exports='" + apiKey + "'\n")},
	})
	large := filepath.Join(dir, "dist", "video.bin")
	f, err := os.Create(large)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(MaxFileBytes + 1); err != nil { // sparse: fast, no disk
		t.Fatal(err)
	}
	f.Close()

	got, err := Scan([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	rel := func(p string) string { r, _ := filepath.Rel(dir, p); return filepath.ToSlash(r) }
	type want struct {
		file         string
		line, column int
		offset       int64
		kind, masked string
	}
	wants := []want{
		{".env.production", 2, 1, 37, KindPublicEnvKey, "VITE_ANTHROPIC_API_KEY=sk-ant-api03-…WXYZ"},
		{"app.json", 1, 20, 19, KindPublicEnvKey, "EXPO_PUBLIC_ANTHROPIC_KEY=sk-ant-api03-…WXYZ"},
		{"dist/assets/app.js.map", 1, 86, 85, KindPublicEnvName, "VITE_ANTHROPIC_API_KEY"},
		{"dist/assets/app.min.js", 1, 4810, 4809, KindKey, "sk-ant-api03-…WXYZ"},
		{"dist/plugin.wasm", 0, 0, 128, KindKey, "sk-ant-api03-…WXYZ"},
		{"dist/video.bin", 0, 0, 0, KindSkipped, ""},
		{"node_modules/leaky/index.cjs", 1, 17, 16, KindKey, "sk-ant-api03-…WXYZ"},
		{"ops/notes.txt", 2, 15, 21, KindAdminKey, "sk-ant-admin01-…QRST"},
		{"src/config.ts", 2, 20, 40, KindPublicEnvName, "NEXT_PUBLIC_CLAUDE_KEY"},
	}
	if len(got) != len(wants) {
		for _, g := range got {
			t.Log(g)
		}
		t.Fatalf("%d findings, want %d", len(got), len(wants))
	}
	for i, w := range wants {
		g := got[i]
		if rel(g.File) != w.file || g.Line != w.line || g.Column != w.column || g.Offset != w.offset || g.Kind != w.kind || g.Masked != w.masked {
			t.Errorf("finding %d = %s %d:%d @%d %s %q\n            want %s %d:%d @%d %s %q",
				i, rel(g.File), g.Line, g.Column, g.Offset, g.Kind, g.Masked, w.file, w.line, w.column, w.offset, w.kind, w.masked)
		}
		if w.kind != KindSkipped && !g.Leak() || w.kind == KindSkipped && g.Leak() {
			t.Errorf("finding %d Leak() = %v", i, g.Leak())
		}
		for _, k := range []string{apiKey, adminKey} {
			if strings.Contains(g.Masked, k[:30]) || strings.Contains(g.String(), k[:30]) {
				t.Errorf("finding %d shows the key: %s", i, g)
			}
		}
	}
}

func TestScanCleanBundle(t *testing.T) {
	dir := writeTree(t, []bundleFile{
		{"dist/index.html", []byte("<!doctype html><title>app</title>")},
		{"dist/assets/app.js", []byte(`const base=import.meta.env.VITE_API_URL;fetch(base+"/v1/messages",{headers:{"x-api-key":token}})`)},
		{"dist/assets/app.js.map", []byte(`{"version":3,"sources":["a.ts"],"mappings":""}`)},
		{"README.txt", []byte("Keys look like sk-ant-... and never go in the browser.\nsk-ant-api03-short\nserver: process.env.ANTHROPIC_API_KEY\n")},
		{".env", []byte("ANTHROPIC_API_KEY_FILE=/run/secrets/anthropic\nVITE_MOAT_URL=http://localhost:8080\n")},
		{"logo.png", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")},
		{"empty.js", nil},
	})
	got, err := Scan([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("clean bundle has findings: %v", got)
	}
}

func TestScanPathsAndErrors(t *testing.T) {
	dir := writeTree(t, []bundleFile{{"a.js", []byte("x='" + apiKey + "'")}})
	if err := os.Symlink(filepath.Join(dir, "a.js"), filepath.Join(dir, "link.js")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(dir, filepath.Join(dir, "loop")); err != nil {
		t.Fatal(err)
	}
	// A single file argument, a directory with a symlinked file and a
	// symlinked directory (not followed), and a missing path.
	got, err := Scan([]string{filepath.Join(dir, "a.js"), dir, filepath.Join(dir, "missing")})
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("error = %v, want one naming the missing path", err)
	}
	if len(got) != 3 {
		t.Fatalf("findings = %v, want a.js twice and link.js once", got)
	}
}

func TestMaskKey(t *testing.T) {
	cases := []struct{ in, want string }{
		{apiKey, "sk-ant-api03-…WXYZ"},
		{adminKey, "sk-ant-admin01-…QRST"},
		{"sk-" + "ant-" + strings.Repeat("x", 30) + "LAST", "sk-ant-…LAST"},
		{"sk-" + "ant-abc", "sk-ant-…"},
	}
	for _, tc := range cases {
		if got := MaskKey(tc.in); got != tc.want {
			t.Errorf("MaskKey(%q) = %q, want %q", tc.in[:10], got, tc.want)
		}
	}
}

func TestContainsKey(t *testing.T) {
	if !ContainsKey("you are a bot. key: " + apiKey) {
		t.Fatal("key not found")
	}
	if ContainsKey("sk-ant-... is the key format") {
		t.Fatal("placeholder taken for a key")
	}
}

// FuzzScanBytes checks the scanner on arbitrary content: no panic,
// positions within the file, and no finding that shows a whole key.
func FuzzScanBytes(f *testing.F) {
	f.Add([]byte("VITE_ANTHROPIC_API_KEY=" + apiKey + "\n"))
	f.Add([]byte("\x00\x01" + adminKey))
	f.Add([]byte(`{"NEXT_PUBLIC_CLAUDE":"` + apiKey + `"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, fd := range scanBytes("f", b) {
			if fd.Offset < 0 || fd.Offset >= int64(len(b)) {
				t.Fatalf("offset %d outside a %d-byte file", fd.Offset, len(b))
			}
			if fd.Line < 0 || fd.Column < 0 || (fd.Line == 0) != (fd.Column == 0) {
				t.Fatalf("bad position %d:%d", fd.Line, fd.Column)
			}
			for _, m := range keyRE.FindAllString(fd.Masked, -1) {
				t.Fatalf("masked finding shows a key-shaped string %q", m)
			}
		}
	})
}
