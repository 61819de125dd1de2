package scrub

import (
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

// key builds an Anthropic-shaped key at run time (no key-shaped literal is
// committed).
func key(tag string) string {
	return "sk-" + "ant-" + "api03-" + tag + strings.Repeat("x9Q", 20) + "-AA"
}

func moatKey() string { return "moat" + "_" + strings.Repeat("A1b2C3d4", 6)[:43] }

func TestString(t *testing.T) {
	up := key("UP")
	plain := "not-shaped-secret-value-123"
	s := New(up, plain, "", "short")
	cases := []struct{ name, in, want string }{
		{"exact upstream key", "key: " + up + ".", "key: " + Mask + "."},
		{"other anthropic key by shape", "x " + key("OTHER") + " y", "x " + Mask + " y"},
		{"moat client key by shape", "use " + moatKey() + " now", "use " + Mask + " now"},
		{"exact secret without a shape", "a" + plain + "b", "a" + Mask + "b"},
		{"short values are ignored", "short answer", "short answer"},
		{"a tool name is not a client key", "call moat_lookup_customer_records", "call moat_lookup_customer_records"},
		{"too short to be a key", "sk-ant-abc", "sk-ant-abc"},
		{"nothing", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := s.String(tc.in); got != tc.want {
				t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if found := s.Found(tc.in); found != (tc.in != tc.want) {
				t.Errorf("Found(%q) = %v", tc.in, found)
			}
		})
	}
	var zero *Scrubber
	if got := zero.String("k " + key("Z")); got != "k "+Mask {
		t.Errorf("nil scrubber: %q", got)
	}
}

// feed writes text in the given piece sizes and returns what was released
// and the largest hold seen.
func feed(st *Stream, text string, sizes []int) (string, int) {
	var b strings.Builder
	held := 0
	for i := 0; len(text) > 0; i++ {
		n := min(len(text), max(1, sizes[i%len(sizes)]))
		b.WriteString(st.Write(text[:n]))
		held = max(held, st.Pending())
		text = text[n:]
	}
	b.WriteString(st.Flush())
	return b.String(), held
}

func TestStreamEqualsWhole(t *testing.T) {
	up := key("UP")
	s := New(up, "plain-secret-value")
	texts := []string{
		"The key is " + up + " and that is all.",
		"prefix" + up + "suffix " + key("B") + "\n" + moatKey(),
		"sk-an" + "t- is not a key but sk-ant-abcdefgh is one",
		strings.Repeat("word ", 50) + "plain-secret-value" + strings.Repeat(" more", 20),
		"moat_" + "moat_" + strings.Repeat("z", 60),
		"no secrets at all, just prose with moat_ and sk- in it",
	}
	for i, text := range texts {
		want := s.String(text)
		for _, sizes := range [][]int{{1}, {2, 3}, {7}, {64}, {1, 100}} {
			got, _ := feed(s.Stream(), text, sizes)
			if got != want {
				t.Errorf("text %d sizes %v: stream %q, whole %q", i, sizes, got, want)
			}
		}
	}
}

func TestStreamReleasesProse(t *testing.T) {
	s := New(key("UP"))
	st := s.Stream()
	if got := st.Write("Hello there, "); got != "Hello there, " {
		t.Errorf("prose held back: released %q", got)
	}
	if got := st.Write("sk-"); got != "" {
		t.Errorf("a key prefix was released: %q", got)
	}
	if got := st.Write("ant-" + strings.Repeat("k", 30) + " after"); got != Mask+" after" {
		t.Errorf("released %q, want the mask and the prose after it", got)
	}
	if got := st.Write(" and sk"); got != " and " {
		t.Errorf("released %q, want the prose before a possible key", got)
	}
	if got := st.Flush(); got != "sk" {
		t.Errorf("flush %q", got)
	}
}

func TestStreamRandomConcurrent(t *testing.T) {
	up := key("UP")
	s := New(up, moatKey())
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, 7))
			parts := []string{"a ", up, "sk-ant-", "moat_", moatKey(), "xyz", " ", "\n", "k9-_", "é"}
			for n := 0; n < 200; n++ {
				var b strings.Builder
				for j := r.IntN(12); j >= 0; j-- {
					b.WriteString(parts[r.IntN(len(parts))])
				}
				text := b.String()
				sizes := []int{1 + r.IntN(5), 1 + r.IntN(40)}
				got, _ := feed(s.Stream(), text, sizes)
				if want := s.String(text); got != want {
					t.Errorf("stream %q, whole %q", got, want)
					return
				}
				if strings.Contains(got, up) || strings.Contains(got, moatKey()) {
					t.Errorf("a secret survived: %q", got)
				}
			}
		}(uint64(g))
	}
	wg.Wait()
}

func FuzzStream(f *testing.F) {
	f.Add("The key is "+key("F")+" ok", 3)
	f.Add("moat_"+strings.Repeat("Q", 45), 1)
	f.Add("plain words only", 4)
	s := New(key("F"), "exact-secret-42")
	f.Fuzz(func(t *testing.T, text string, size int) {
		size = 1 + abs(size)%64
		got, _ := feed(s.Stream(), text, []int{size})
		if want := s.String(text); got != want {
			t.Fatalf("stream %q != whole %q", got, want)
		}
	})
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
