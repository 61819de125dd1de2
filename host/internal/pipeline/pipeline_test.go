package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/moat-gateway/moat/host/internal/fault"
	"github.com/moat-gateway/moat/sdk/abi"
)

// fake is a Stage that records the texts it saw and answers with fn.
type fake struct {
	name string
	seen []string
	fn   func(text string) (abi.Verdict, error)
}

func (f *fake) Name() string { return f.name }

func (f *fake) Call(_ context.Context, req *abi.Request) (abi.Verdict, error) {
	f.seen = append(f.seen, req.Text)
	return f.fn(req.Text)
}

func allowing(name string) *fake {
	return &fake{name: name, fn: func(string) (abi.Verdict, error) { return abi.AllowVerdict(), nil }}
}

func appending(name, suffix string) *fake {
	return &fake{name: name, fn: func(t string) (abi.Verdict, error) { return abi.ModifyVerdict(t+suffix, "append"), nil }}
}

func rejecting(name string) *fake {
	return &fake{name: name, fn: func(string) (abi.Verdict, error) { return abi.RejectVerdict("no"), nil }}
}

func failing(name string) *fake {
	return &fake{name: name, fn: func(string) (abi.Verdict, error) { return abi.Verdict{}, errors.New("crashed") }}
}

func chainOf(onError string, stages ...*fake) Chain {
	c := Chain{}
	for _, s := range stages {
		c = append(c, &Plugin{Stage: s, Name: s.name, OnError: onError})
	}
	return c
}

func actions(recs []Record) string {
	var s []string
	for _, r := range recs {
		s = append(s, r.Plugin+":"+string(r.Action))
	}
	return strings.Join(s, " ")
}

func TestChainRun(t *testing.T) {
	tests := []struct {
		name        string
		onError     string
		stages      func() []*fake
		wantText    string
		wantRecords string
		wantReject  bool
		wantPlugErr bool
	}{
		{
			name:        "empty chain passes text",
			stages:      func() []*fake { return nil },
			wantText:    "t",
			wantRecords: "",
		},
		{
			name:        "modify feeds the next plugin in order",
			stages:      func() []*fake { return []*fake{appending("a", "1"), allowing("b"), appending("c", "2")} },
			wantText:    "t12",
			wantRecords: "a:modify b:allow c:modify",
		},
		{
			name:        "first reject stops",
			stages:      func() []*fake { return []*fake{appending("a", "1"), rejecting("b"), appending("c", "2")} },
			wantText:    "t1",
			wantRecords: "a:modify b:reject",
			wantReject:  true,
		},
		{
			name:        "plugin error rejects by default",
			stages:      func() []*fake { return []*fake{failing("a"), appending("b", "2")} },
			wantText:    "t",
			wantRecords: "a:error",
			wantPlugErr: true,
		},
		{
			name:        "plugin error skipped under on_error skip",
			onError:     "skip",
			stages:      func() []*fake { return []*fake{failing("a"), appending("b", "2")} },
			wantText:    "t2",
			wantRecords: "a:skip b:modify",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stages := tt.stages()
			text, recs, err := chainOf(tt.onError, stages...).Run(context.Background(), abi.PhaseInput, "t", abi.Context{Route: "r"})
			if text != tt.wantText || actions(recs) != tt.wantRecords {
				t.Fatalf("got %q [%s], want %q [%s]", text, actions(recs), tt.wantText, tt.wantRecords)
			}
			var rej *RejectError
			var pe *PluginError
			if got := errors.As(err, &rej); got != tt.wantReject {
				t.Fatalf("reject error = %v", err)
			}
			if got := errors.As(err, &pe); got != tt.wantPlugErr {
				t.Fatalf("plugin error = %v", err)
			}
			if !tt.wantReject && !tt.wantPlugErr && err != nil {
				t.Fatal(err)
			}
			if rej != nil && (rej.Plugin != "b" || rej.Reason != "no" || rej.Phase != abi.PhaseInput) {
				t.Errorf("reject error %+v", rej)
			}
			if pe != nil && (pe.Plugin != "a" || !strings.Contains(pe.Error(), "crashed")) {
				t.Errorf("plugin error %+v", pe)
			}
			// The kind the edge maps: a reject is the input's refusal, a
			// plugin error a plugin failure, each naming its plugin.
			if err != nil {
				want, plugin := fault.InputRejected, "b"
				if tt.wantPlugErr {
					want, plugin = fault.PluginFailed, "a"
				}
				if f := fault.From(err); f.Kind != want || f.Plugin != plugin {
					t.Errorf("fault %s naming %q, want %s naming %q", f.Kind, f.Plugin, want, plugin)
				}
			}
			if len(stages) > 1 && len(stages[1].seen) > 0 && tt.name == "modify feeds the next plugin in order" && stages[1].seen[0] != "t1" {
				t.Errorf("second plugin saw %q, want t1", stages[1].seen[0])
			}
		})
	}
}

func TestChainCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	a := allowing("a")
	_, recs, err := chainOf("skip", a).Run(ctx, abi.PhaseOutput, "t", abi.Context{})
	if !errors.Is(err, ErrCanceled) || !errors.Is(err, fault.ClientGone) || len(recs) != 0 || len(a.seen) != 0 {
		t.Fatalf("err %v, records %v", err, recs)
	}
	// A deadline is not the client leaving.
	dl, cancelDL := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancelDL()
	_, _, err = chainOf("skip", a).Run(dl, abi.PhaseOutput, "t", abi.Context{})
	if !errors.Is(err, ErrCanceled) || errors.Is(err, fault.ClientGone) {
		t.Fatalf("deadline: err %v", err)
	}
}

func TestNativeStage(t *testing.T) {
	st := &NativeStage{
		PluginName: "n",
		Input: func(r abi.Request) abi.Verdict {
			switch r.Text {
			case "panic":
				panic("boom")
			case "bad":
				return abi.Verdict{Action: "explode"}
			}
			return abi.ModifyVerdict(strings.ToUpper(r.Text), "upper")
		},
	}
	ctx := context.Background()
	v, err := st.Call(ctx, &abi.Request{Phase: abi.PhaseInput, Text: "hi"})
	if err != nil || v.Text != "HI" {
		t.Fatalf("%+v %v", v, err)
	}
	if _, err := st.Call(ctx, &abi.Request{Phase: abi.PhaseInput, Text: "panic"}); err == nil || !strings.Contains(err.Error(), "panicked: boom") {
		t.Errorf("panic: %v", err)
	}
	if _, err := st.Call(ctx, &abi.Request{Phase: abi.PhaseInput, Text: "bad"}); !errors.Is(err, abi.ErrUnknownAction) {
		t.Errorf("bad verdict: %v", err)
	}
	if _, err := st.Call(ctx, &abi.Request{Phase: abi.PhaseOutput, Text: "x"}); err == nil {
		t.Error("output call without handler succeeded")
	}
	if st.HasPhase(abi.PhaseOutput) || !st.HasPhase(abi.PhaseInput) {
		t.Error("HasPhase")
	}
}

// TestRejectKindByPhase: a reject on output is the output's refusal, with
// the verdict's text as the message.
func TestRejectKindByPhase(t *testing.T) {
	for _, tc := range []struct {
		phase abi.Phase
		want  fault.Kind
		msg   string
	}{
		{abi.PhaseInput, fault.InputRejected, `input rejected by plugin "p": why`},
		{abi.PhaseOutput, fault.OutputRejected, `output rejected by plugin "p": why`},
	} {
		t.Run(string(tc.phase), func(t *testing.T) {
			err := fmt.Errorf("judging: %w", &RejectError{Plugin: "p", Reason: "why", Phase: tc.phase})
			if !errors.Is(err, tc.want) {
				t.Fatalf("errors.Is(err, %s) = false", tc.want)
			}
			if f := fault.From(err); f.Msg != tc.msg || f.Plugin != "p" {
				t.Fatalf("fault %+v", f)
			}
		})
	}
}
