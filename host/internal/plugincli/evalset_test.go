package plugincli

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestReadSet(t *testing.T) {
	tests := []struct {
		name, file, content string
		attack              bool
		format              setFormat
		attacks, benign     []string
		err                 string
	}{
		{name: "json strings", file: "a.json", content: `["x", "y"]`, attack: true, attacks: []string{"x", "y"}},
		{name: "json objects prompt", file: "b.json", content: `[{"prompt":"p","word_list":["a"]},{"text":"t"}]`, benign: []string{"p", "t"}},
		{name: "json objects text field", file: "b.json", content: `[{"query":"q1"},{"query":"q2"}]`, format: setFormat{textField: "query"}, benign: []string{"q1", "q2"}},
		{name: "json missing field", file: "b.json", content: `[{"query":"q1"}]`, err: `item 0: object has no "prompt" or "text" field`},
		{name: "json field not string", file: "b.json", content: `[{"text":3}]`, err: `field "text" is not a string`},
		{name: "json not array", file: "b.json", content: `{"a":1}`, err: "want a JSON array"},
		{name: "jsonl", file: "c.jsonl", content: "{\"q\":\"one\"}\n\n{\"q\":\"two\\nlines\"}\n\"three\"\n", attack: true, format: setFormat{textField: "q"}, attacks: []string{"one", "two\nlines", "three"}},
		{name: "jsonl bad line", file: "c.jsonl", content: "{\"q\":\"one\"}\n{oops\n", format: setFormat{textField: "q"}, err: "line 2"},
		{name: "ndjson default fields", file: "c.ndjson", content: `{"prompt":"p"}`, benign: []string{"p"}},
		{name: "csv text column", file: "d.csv", content: "id,text\n1,hello\n2,\"a, b\"\n", benign: []string{"hello", "a, b"}},
		{name: "csv single column", file: "d.csv", content: "sentence\nfoo\nbar\n", attack: true, attacks: []string{"foo", "bar"}},
		{name: "csv named column", file: "d.csv", content: "a,b\nx,y\n", format: setFormat{textField: "b"}, benign: []string{"y"}},
		{name: "csv no text column", file: "d.csv", content: "a,b\nx,y\n", err: "no text column"},
		{name: "csv labelled", file: "e.csv", content: "text,label\nignore that,1\nhello,0\nDAN,jailbreak\nhi,Benign\n", format: setFormat{labelColumn: "label"}, attacks: []string{"ignore that", "DAN"}, benign: []string{"hello", "hi"}},
		{name: "csv labelled bad label", file: "e.csv", content: "text,label\nx,maybe\n", format: setFormat{labelColumn: "label"}, err: `row 2: label "maybe"`},
		{name: "csv no label column", file: "e.csv", content: "text,kind\nx,1\n", format: setFormat{labelColumn: "label"}, err: `no label column "label"`},
		{name: "csv ragged", file: "e.csv", content: "text,label\nx\n", format: setFormat{labelColumn: "label"}, err: "wrong number of fields"},
		{name: "csv empty", file: "e.csv", content: "", err: "empty CSV"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), tc.file)
			if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := readSet(path, tc.attack, tc.format)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, errBadSet) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.attacks, tc.attacks) || !slices.Equal(got.benign, tc.benign) {
				t.Fatalf("got %q / %q, want %q / %q", got.attacks, got.benign, tc.attacks, tc.benign)
			}
		})
	}
	if _, err := readSet(filepath.Join(t.TempDir(), "missing.json"), true, setFormat{}); err == nil {
		t.Fatal("missing file accepted")
	}
}

func TestWilson(t *testing.T) {
	tests := []struct {
		k, n   int
		lo, hi float64 // percent, one decimal (checked against R's prop.test(correct=FALSE))
	}{
		{0, 0, 0, 0}, {0, 10, 0, 27.8}, {10, 10, 72.2, 100}, {2, 3, 20.8, 93.9}, {57, 63, 80.7, 95.6}, {4, 339, 0.5, 3.0},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%d/%d", tc.k, tc.n), func(t *testing.T) {
			lo, hi := wilson(tc.k, tc.n)
			if math.Abs(100*lo-tc.lo) > 0.051 || math.Abs(100*hi-tc.hi) > 0.051 {
				t.Fatalf("got %.2f-%.2f, want %.1f-%.1f", 100*lo, 100*hi, tc.lo, tc.hi)
			}
			if tc.n > 0 {
				p := float64(tc.k) / float64(tc.n)
				if lo > p || hi < p {
					t.Fatalf("interval %.3f-%.3f excludes %.3f", lo, hi, p)
				}
			}
		})
	}
}

// FuzzParseSets: no input makes a parser panic, and every error is an
// errBadSet.
func FuzzParseSets(f *testing.F) {
	f.Add([]byte(`["a",{"prompt":"b"}]`), "")
	f.Add([]byte("{\"t\":\"x\"}\n\"y\"\n"), "t")
	f.Add([]byte("text,label\n\"a\"\"b\",1\n"), "")
	f.Fuzz(func(t *testing.T, b []byte, field string) {
		check := func(err error) {
			if err != nil && !errors.Is(err, errBadSet) {
				t.Fatalf("error not errBadSet: %v", err)
			}
		}
		_, err := parseJSONArray(b, field)
		check(err)
		_, err = parseJSONLines(b, field)
		check(err)
		_, err = parseCSV(b, field)
		check(err)
		_, err = parseLabelledCSV(b, setFormat{textField: field, labelColumn: "label"})
		check(err)
	})
}
