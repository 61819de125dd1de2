package streamguard

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/moat-gateway/moat/host/internal/pipeline"
	"github.com/moat-gateway/moat/sdk/abi"
)

// holdStage allows every text unchanged and holds its last n bytes: an
// exact hold (nothing before them can change), longer than a redactor's,
// so the guard's cut can fall inside what a later stage matched.
type holdStage int

func (h holdStage) Name() string { return fmt.Sprintf("hold-%d", int(h)) }

func (h holdStage) Call(_ context.Context, req *abi.Request) (abi.Verdict, error) {
	n := min(int(h), len(req.Text))
	return abi.Verdict{Action: abi.Allow, Hold: &n}, nil
}

func holder(n int) Stage {
	return Stage{Plugin: &pipeline.Plugin{Stage: holdStage(n), Name: holdStage(n).Name(), Streaming: "incremental"}, Caps: Incremental}
}

// counting counts a stage's calls.
type counting struct {
	pipeline.Stage
	calls *int
}

func (c counting) Call(ctx context.Context, req *abi.Request) (abi.Verdict, error) {
	*c.calls++
	return c.Stage.Call(ctx, req)
}

// streamPaced feeds text to g in deltas of size bytes, each judged as it
// arrives, then flushes; it returns what was released.
func streamPaced(g *Guard, text string, size int) (string, error) {
	var b block
	var out strings.Builder
	for i := 0; i < len(text); i += size {
		s, err := g.feed(&b, text[i:min(i+size, len(text))], true)
		if err != nil {
			return out.String(), err
		}
		out.WriteString(s)
	}
	s, err := g.flush(&b)
	out.WriteString(s)
	return out.String(), err
}

// TestSettledStreams streams texts through chains of stages with exact
// holds in every delta size from 1 to 16, judged at each delta (the path
// that judges the tail once per step): the released text equals the
// chain's judgement of the whole text, and no secret reaches the client,
// whether the cut falls before a credential's name and its value
// (password = <value> split across deltas), inside a key a redactor
// matched (a longer hold before or after it), or after markup escaped.
func TestSettledStreams(t *testing.T) {
	key := "sk-" + "ant-api03-" + strings.Repeat("Ab3", 14)
	cred := "hunQ7#xYz9Kp2mWq"
	texts := []struct {
		name, text string
		secrets    []string
	}{
		{"password split", "so the password = " + cred + "\nand then plain words follow here", []string{cred}},
		{"quoted api key", `config: api_key: "` + cred + `" then more words`, []string{cred}},
		{"bearer", "Authorization: Bearer " + key[10:] + " and after", []string{key[10:]}},
		{"key in prose", "the key " + key + " was pasted, and <b>markup</b> 'quoted' & more", []string{key[10:]}},
		{"markup only", `<script>alert("x")</script> and don't & stop`, nil},
		{"plain", "nothing to see here, only words and 0123 digits in a row", nil},
	}
	chains := []struct {
		name   string
		stages func(t *testing.T) []Stage
	}{
		{"redact", func(t *testing.T) []Stage { return []Stage{redactor(t)} }},
		{"redact+escape", defaultStagesT},
		{"escape+redact", func(t *testing.T) []Stage { return []Stage{nativeStage(t, "html-escape"), redactor(t)} }},
		{"hold+redact", func(t *testing.T) []Stage { return []Stage{holder(24), redactor(t)} }},
		{"redact+hold", func(t *testing.T) []Stage { return []Stage{redactor(t), holder(24)} }},
		{"redact+escape+canary", func(t *testing.T) []Stage { return append(defaultStagesT(t), Canary(testCanary)) }},
	}
	for _, ch := range chains {
		for _, tx := range texts {
			t.Run(ch.name+"/"+tx.name, func(t *testing.T) {
				g := New(context.Background(), ch.stages(t), abi.Context{}, &pipeline.Verdicts{})
				want, err := g.Whole(tx.text)
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range tx.secrets {
					// An escaper first hides quoted values from the
					// redactor; the others must redact every secret.
					if strings.Contains(want, s) && ch.name != "escape+redact" {
						t.Fatalf("the chain leaves %q in the whole text: the case is off", s)
					}
				}
				for size := 1; size <= 16; size++ {
					got, err := streamPaced(g, tx.text, size)
					if err != nil {
						t.Fatalf("delta %d: %v", size, err)
					}
					if got != want {
						t.Fatalf("delta %d: streamed %q, whole %q", size, got, want)
					}
				}
			})
		}
	}
}

func defaultStagesT(t *testing.T) []Stage { return defaultStages(t) }

// TestSettledRunsOncePerStep counts the stages' calls on a paced stream of
// plain words: with exact holds each judged delta runs each stage once,
// where the split check ran them three times; a stage without a hold
// (hold_back) still takes the split check.
func TestSettledRunsOncePerStep(t *testing.T) {
	text := strings.Repeat("plain words come one by one ", 8)
	tests := []struct {
		name     string
		holdBack bool // the redactor's hold is dropped: its hold_back is used
		maxCalls int  // per stage per delta
	}{
		{"exact holds", false, 1},
		{"hold_back", true, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls int
			st := redactor(t)
			p := *st.Plugin
			if tc.holdBack {
				p.Stage, p.HoldBack = dropHold{p.Stage}, 16
			}
			p.Stage = counting{Stage: p.Stage, calls: &calls}
			st.Plugin = &p
			g := New(context.Background(), []Stage{st}, abi.Context{}, &pipeline.Verdicts{})
			var b block
			deltas, released := 0, ""
			for i := 0; i < len(text); i += 5 {
				out, err := g.feed(&b, text[i:min(i+5, len(text))], true)
				if err != nil {
					t.Fatal(err)
				}
				released += out
				deltas++
			}
			if released == "" {
				t.Fatal("nothing was released before the block's end")
			}
			if tc.holdBack {
				if calls <= deltas {
					t.Fatalf("%d calls for %d deltas: the split check did not run", calls, deltas)
				}
				return
			}
			if calls > tc.maxCalls*deltas {
				t.Fatalf("%d calls for %d deltas, want at most %d", calls, deltas, tc.maxCalls*deltas)
			}
		})
	}
}

// dropHold removes a stage's verdict hold, as a plugin that gives none.
type dropHold struct{ pipeline.Stage }

func (d dropHold) Call(ctx context.Context, req *abi.Request) (abi.Verdict, error) {
	v, err := d.Stage.Call(ctx, req)
	v.Hold = nil
	return v, err
}

// TestSettledRejectInTail checks that a reject anywhere in the unreleased
// tail stops the stream on the one-run path, before any of the tail is
// released.
func TestSettledRejectInTail(t *testing.T) {
	g := New(context.Background(), []Stage{redactor(t), rejecter()}, abi.Context{}, &pipeline.Verdicts{})
	text := "all fine until the forbidden word appears"
	got, err := streamPaced(g, text, 4)
	var rej *pipeline.RejectError
	if !errors.As(err, &rej) {
		t.Fatalf("err = %v, want a refusal", err)
	}
	if strings.Contains(got, "forb") || !strings.HasPrefix(text, got) {
		t.Fatalf("released %q", got)
	}
}

// TestBurstJudgedOnce feeds deltas that arrive together (more buffered):
// they collect unjudged until the upstream has nothing more buffered or
// maxBatch bytes wait, and then are judged once, as one text.
func TestBurstJudgedOnce(t *testing.T) {
	delta := "words in a burst "
	tests := []struct {
		name      string
		deltas    int
		wantCalls int
	}{
		{"short burst", 40, 1},
		{"past maxBatch", maxBatch/len(delta) + 2, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls int
			st := redactor(t)
			p := *st.Plugin
			p.Stage = counting{Stage: p.Stage, calls: &calls}
			st.Plugin = &p
			g := New(context.Background(), []Stage{st}, abi.Context{}, &pipeline.Verdicts{})
			var b block
			var released strings.Builder
			for i := 0; i < tc.deltas; i++ {
				out, err := g.feed(&b, delta, i == tc.deltas-1)
				if err != nil {
					t.Fatal(err)
				}
				released.WriteString(out)
			}
			if calls != tc.wantCalls {
				t.Fatalf("%d stage calls for a burst of %d deltas, want %d", calls, tc.deltas, tc.wantCalls)
			}
			if want := strings.Repeat(delta, tc.deltas); released.String() != want {
				t.Fatalf("released %d bytes, want all %d", released.Len(), len(want))
			}
		})
	}
}
