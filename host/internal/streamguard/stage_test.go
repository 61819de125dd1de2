package streamguard

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/moat-gateway/moat/host/internal/pipeline"
	"github.com/moat-gateway/moat/sdk/abi"
)

// upper is a test stage upper-casing text.
type upper struct{}

func (upper) Name() string { return "upper" }
func (upper) Call(_ context.Context, req *abi.Request) (abi.Verdict, error) {
	return abi.Verdict{Action: abi.Modify, Text: strings.ToUpper(req.Text)}, nil
}

// TestWholeJSONStages: the WholeJSON stage judges the raw answer, a
// SeesOriginal stage the whole answer, the other stages each string value;
// a refusal by a stage that Repairs is repairable and no other is; the
// records keep the stages' order.
func TestWholeJSONStages(t *testing.T) {
	schema, err := Schema(map[string]any{"type": "object", "required": []any{"a"}})
	if err != nil {
		t.Fatal(err)
	}
	up := Stage{Plugin: &pipeline.Plugin{Stage: upper{}, Name: "upper"}}
	cases := []struct {
		name, text, want string
		refusedBy        string
		repairable       bool
	}{
		{"values judged", "```json\n{\"a\": \"x<y\", \"b\": [\"z\"]}\n```", `{"a":"X<Y","b":["Z"]}`, "", false},
		{"schema refuses", `{"b": 1}`, "", SchemaName, true},
		{"not JSON", `{"a": `, "", SchemaName, true},
		{"canary", `{"a": "` + testCanary + `"}`, "", CanaryName, false},
		{"canary across values", `{"a": ["01234567", "89abcdef"]}`, "", CanaryName, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var v pipeline.Verdicts
			g := New(context.Background(), []Stage{schema, up, Canary(testCanary)}, abi.Context{}, &v)
			got, err := g.Whole(tc.text)
			var rej *pipeline.RejectError
			if tc.refusedBy == "" {
				if err != nil || got != tc.want {
					t.Fatalf("Whole = %q, %v; want %q", got, err, tc.want)
				}
			} else if !errors.As(err, &rej) || rej.Plugin != tc.refusedBy {
				t.Fatalf("err = %v, want a refusal by %s", err, tc.refusedBy)
			}
			if g.Repairable(err) != tc.repairable {
				t.Errorf("Repairable(%v) = %v", err, !tc.repairable)
			}
			var names []string
			for _, r := range v.List() {
				names = append(names, r.Plugin)
			}
			if names[0] != SchemaName {
				t.Errorf("records %v: the schema must judge first", names)
			}
		})
	}
}

// TestWholeJSONOnlyForAnswers: thinking and other kinds skip the JSON
// stage and go through the other stages whole.
func TestWholeJSONOnlyForAnswers(t *testing.T) {
	schema, err := Schema(nil)
	if err != nil {
		t.Fatal(err)
	}
	up := Stage{Plugin: &pipeline.Plugin{Stage: upper{}, Name: "upper"}}
	g := New(context.Background(), []Stage{schema, up}, abi.Context{}, &pipeline.Verdicts{})
	g.At(abi.KindThinking, "content.0.thinking", "assistant")
	if got, err := g.Whole("not json"); err != nil || got != "NOT JSON" {
		t.Fatalf("Whole = %q, %v", got, err)
	}
}
