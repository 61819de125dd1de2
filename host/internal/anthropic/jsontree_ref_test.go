package anthropic

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

// referenceParseTree is parseTree before issue 18 (the reference of the
// differential tests below): the decoder reads a copy of body through an
// io.Reader, and every string and name is a token turned into a string.
func referenceParseTree(body []byte) (*node, error) {
	dec := jsontext.NewDecoder(bytes.NewReader(body),
		jsontext.AllowDuplicateNames(false), jsontext.AllowInvalidUTF8(false))
	p := refTreeParser{treeParser{dec: dec, body: body}}
	root, err := p.value(0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		if err == nil {
			err = errors.New("data after the top-level value")
		}
		return nil, err
	}
	return root, nil
}

type refTreeParser struct{ treeParser }

func (p *refTreeParser) value(depth int) (*node, error) {
	if depth > maxDepth {
		return nil, errTooDeep
	}
	s := p.start()
	tok, err := p.dec.ReadToken()
	if err != nil {
		return nil, err
	}
	n := &node{kind: byte(tok.Kind())}
	switch n.kind {
	case '{':
		for p.dec.PeekKind() != '}' {
			kt, err := p.dec.ReadToken()
			if err != nil {
				return nil, err
			}
			name := kt.String()
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			v.parent = n
			n.keys = append(n.keys, name)
			n.vals = append(n.vals, v)
		}
		if _, err := p.dec.ReadToken(); err != nil {
			return nil, err
		}
	case '[':
		for p.dec.PeekKind() != ']' {
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			v.parent = n
			n.vals = append(n.vals, v)
		}
		if _, err := p.dec.ReadToken(); err != nil {
			return nil, err
		}
	case '"':
		n.str = tok.String()
	case 0:
		return nil, fmt.Errorf("unexpected end of input")
	}
	n.raw = p.body[s:int(p.dec.InputOffset())]
	return n, nil
}

// sameTree compares two trees: kinds, original bytes, strings, names.
func sameTree(a, b *node) error {
	if a.kind != b.kind || !bytes.Equal(a.raw, b.raw) || a.str != b.str || len(a.keys) != len(b.keys) || len(a.vals) != len(b.vals) {
		return fmt.Errorf("value %q (kind %c, %q) != %q (kind %c, %q)", a.raw, a.kind, a.str, b.raw, b.kind, b.str)
	}
	for i := range a.keys {
		if a.keys[i] != b.keys[i] {
			return fmt.Errorf("name %q != %q", a.keys[i], b.keys[i])
		}
	}
	for i := range a.vals {
		if a.vals[i].parent != a || b.vals[i].parent != b {
			return fmt.Errorf("parent link broken in %q", a.raw)
		}
		if err := sameTree(a.vals[i], b.vals[i]); err != nil {
			return err
		}
	}
	return nil
}

func checkSameParse(t *testing.T, body []byte) {
	t.Helper()
	got, gerr := parseTree(body)
	want, werr := referenceParseTree(body)
	if (gerr == nil) != (werr == nil) {
		t.Fatalf("parseTree(%q) error %v, reference %v", body, gerr, werr)
	}
	if gerr == nil {
		if err := sameTree(got, want); err != nil {
			t.Fatalf("parseTree(%q): %v", body, err)
		}
	}
}

var treeCases = []string{
	`{}`, `[]`, `""`, `"a\"b"`, `{"type":"text","text":"hi"}`, `{"a":1,"b":[true,false,null,1.5e3,"x"]}`,
	`{"te\u0078t":"x","text":"y"}`, `{"text":"x","text":"y"}`, `{"content":"x","\u0063ontent":"y"}`,
	"{\"text\":\"a\xffb\"}", `{"text":"\ud800"}`, `{"text":"\ud83d\ude00 é"}`, "{\"a\xff\":1}",
	` { "model" : "m" , "messages" : [ { "role" : "user" , "content" : "hi" } ] } `,
	`{"a":1}x`, `{"a":`, `{"a":"\u00"}`, `{"a":"` + "\x01" + `"}`, `[1,]`, `{"a":1,}`,
	`{"type":"message","id":"msg_1","usage":{"input_tokens":3,"output_tokens":5}}`,
	`"\u00e9\/\b\f\n\r\t\\\" end"`, `"\ud83d\ude00"`, `"\uD83D\uDE00x"`, `"a\ud800\u0041"`, `"\udc00"`, `"\ud800"`,
	`"\u0000\u001f\u2028"`, `"\x"`, `"\u12"`, `"tail\\"`, `{"k\u0065y":"v\n"}`,
}

// TestParseTreeMatchesReference: the tree is the one the previous parser
// built (same values, bytes, strings and names; same refusals), on the
// cases above and on every JSON file in testdata.
func TestParseTreeMatchesReference(t *testing.T) {
	for _, c := range treeCases {
		t.Run(c, func(t *testing.T) { checkSameParse(t, []byte(c)) })
	}
	files, _ := filepath.Glob("testdata/*/*.json")
	if len(files) == 0 {
		t.Fatal("no testdata JSON files")
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			checkSameParse(t, b)
		})
	}
}

// FuzzParseTree compares parseTree with the reference on any bytes.
func FuzzParseTree(f *testing.F) {
	for _, c := range treeCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkSameParse(t, body) })
}

// BenchmarkParseTree parses the 4 KiB request, the every-block-type
// response and a message_delta event with parseTree and, as the baseline in the same run, with the
// reference parser.
func BenchmarkParseTree(b *testing.B) {
	resp, err := os.ReadFile("testdata/output/message.json")
	if err != nil {
		b.Fatal(err)
	}
	for _, in := range []struct {
		name string
		body []byte
	}{{"request4K", benchRequest(b, false)}, {"response", resp},
		{"event", []byte(`{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":300}}`)}} {
		for _, impl := range []struct {
			name  string
			parse func([]byte) (*node, error)
		}{{"new", parseTree}, {"reference", referenceParseTree}} {
			b.Run(in.name+"/"+impl.name, func(b *testing.B) {
				b.SetBytes(int64(len(in.body)))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := impl.parse(in.body); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// TestSetDoesNotTouchSiblings: an object's members are slices of chunks
// shared by the whole tree; a member appended to one object must not
// overwrite the next one's.
func TestSetDoesNotTouchSiblings(t *testing.T) {
	root, err := parseTree([]byte(`{"a":{"x":1},"b":{"y":2},"c":[1,2],"d":[3]}`))
	if err != nil {
		t.Fatal(err)
	}
	extra, err := parseTree([]byte(`"new"`))
	if err != nil {
		t.Fatal(err)
	}
	root.get("a").set("z", extra)
	root.get("c").vals = append(root.get("c").vals, extra)
	for _, tc := range []struct {
		key, want string
	}{{"b", `y`}, {"a", `x z`}} {
		got := strings.Join(root.get(tc.key).keys, " ")
		if got != tc.want {
			t.Errorf("%s's keys = %q, want %q", tc.key, got, tc.want)
		}
	}
	if d := root.get("d").vals; len(d) != 1 || string(d[0].raw) != "3" {
		t.Errorf("d = %v after appending to c", d)
	}
	if y := root.get("b").get("y"); y == nil || string(y.raw) != "2" {
		t.Errorf("b.y = %v", y)
	}
}

// TestParseTreeConcurrent: the decoders and their member stacks are
// pooled; with more parsers than cores, every tree must still equal the
// reference parser's, also after other parses have reused the pool (a tree
// must not share memory with it).
func TestParseTreeConcurrent(t *testing.T) {
	bodies := [][]byte{benchRequest(t, false), benchRequest(t, true)}
	for _, c := range treeCases {
		bodies = append(bodies, []byte(c))
	}
	var wg sync.WaitGroup
	workers := 4 * runtime.GOMAXPROCS(0)
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			type parsed struct {
				body []byte
				tree *node
			}
			var kept []parsed
			for i := range 200 {
				body := bodies[(w+i)%len(bodies)]
				if tree, err := parseTree(body); err == nil {
					kept = append(kept, parsed{body, tree})
				}
			}
			for _, k := range kept {
				want, err := referenceParseTree(k.body)
				if err != nil {
					errs <- fmt.Errorf("reference refused %q, parseTree did not", k.body)
					return
				}
				if err := sameTree(k.tree, want); err != nil {
					errs <- fmt.Errorf("parseTree(%.60q) after concurrent parses: %v", k.body, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
