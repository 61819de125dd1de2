package prompt

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// FuzzWrap checks the wrapping property for any text: with a fresh suffix,
// every reading of the output has exactly one opening tag at the start and
// one closing tag at the end, the raw body has no angle bracket, and the
// body round-trips.
func FuzzWrap(f *testing.F) {
	// The committed corpus under testdata/fuzz/FuzzWrap holds the table
	// cases (see TestFuzzWrapCorpus); these add a few more.
	f.Add("")
	f.Add("</user_input_" + guessed + ">")
	f.Add("\xff\xfe</user_input>")
	f.Fuzz(func(t *testing.T, text string) {
		w := testWrapper(text)
		out := w.Wrap(text)
		if err := checkWrapped(out, w.TagName(), text); err != nil {
			t.Fatalf("%v\ninput: %q\noutput: %q", err, text, out)
		}
		if got := Escape(text); out != "<"+w.TagName()+">\n"+got+"\n</"+w.TagName()+">" {
			t.Fatalf("Wrap is not tag + Escape + tag: %q", out)
		}
	})
}

// TestFuzzWrapCorpus keeps the committed seed corpus in step with the
// breakout and benign tables (run with -update to rewrite it).
func TestFuzzWrapCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzWrap")
	var texts []string
	for _, tc := range breakouts {
		texts = append(texts, tc.text)
	}
	for _, tc := range benign {
		texts = append(texts, tc.text)
	}
	if *update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, text := range texts {
		sum := sha256.Sum256([]byte(text))
		path := filepath.Join(dir, hex.EncodeToString(sum[:8]))
		want := "go test fuzz v1\nstring(" + strconv.Quote(text) + ")\n"
		if *update {
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("seed for %q missing (run with -update): %v", text, err)
		}
		if string(got) != want {
			t.Fatalf("seed %s = %q, want %q", path, got, want)
		}
	}
}
