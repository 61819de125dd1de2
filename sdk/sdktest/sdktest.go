// Package sdktest runs moat plugin handlers natively, in plain go test,
// through the same ABI v2 round trip and verdict checks as the sandbox, so
// plugin authors test their logic without building wasm.
package sdktest

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/moat-gateway/moat/sdk"
	"github.com/moat-gateway/moat/sdk/abi"
)

// Call runs h on text for phase, with config (any JSON-encodable value, or
// nil) as the plugin's config table. It fails, as the host would, on a
// handler panic or an invalid verdict.
func Call(h sdk.Handler, phase abi.Phase, text string, config any) (v abi.Verdict, err error) {
	return CallRequest(h, abi.Request{Phase: phase, Text: text}, config)
}

// CallRequest is Call with a full request (for the context fields).
func CallRequest(h sdk.Handler, req abi.Request, config any) (v abi.Verdict, err error) {
	if config != nil {
		b, err := json.Marshal(config)
		if err != nil {
			return abi.Verdict{}, fmt.Errorf("encoding config: %w", err)
		}
		req.Config = b
	}
	body, err := abi.AppendRequestV2(nil, &req)
	if err != nil {
		return abi.Verdict{}, fmt.Errorf("encoding request: %w", err)
	}
	defer func() {
		if r := recover(); r != nil {
			v, err = abi.Verdict{}, fmt.Errorf("handler panicked: %v", r)
		}
	}()
	out := sdk.DispatchV2(h, body, nil)
	if len(out) == 0 {
		return abi.AllowVerdict(), nil
	}
	return abi.DecodeVerdictV2(out)
}

// Case is one row of a table test.
type Case struct {
	// Name names the subtest (default: the text).
	Name string
	// Phase defaults to input.
	Phase abi.Phase
	Text  string
	// Config is the plugin's config table (any JSON-encodable value).
	Config  any
	Context abi.Context
	// Want is the expected action.
	Want abi.Action
	// WantText, when set, is the expected text of a modify.
	WantText string
	// WantReason, when set, must appear in the verdict's reason.
	WantReason string
	// WantErr expects the call to fail as a plugin error (panic, bad verdict).
	WantErr bool
}

// Run runs each case as a subtest of t.
func Run(t *testing.T, h sdk.Handler, cases ...Case) {
	t.Helper()
	for _, c := range cases {
		name := c.Name
		if name == "" {
			name = c.Text
		}
		t.Run(name, func(t *testing.T) {
			t.Helper()
			phase := c.Phase
			if phase == "" {
				phase = abi.PhaseInput
			}
			v, err := CallRequest(h, abi.Request{Phase: phase, Text: c.Text, Context: c.Context}, c.Config)
			if c.WantErr {
				if err == nil {
					t.Fatalf("verdict %+v, want a plugin error", v)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v.Action != c.Want {
				t.Fatalf("action %q (reason %q), want %q", v.Action, v.Reason, c.Want)
			}
			if c.WantText != "" && v.Text != c.WantText {
				t.Errorf("text %q, want %q", v.Text, c.WantText)
			}
			if c.WantReason != "" && !strings.Contains(v.Reason, c.WantReason) {
				t.Errorf("reason %q lacks %q", v.Reason, c.WantReason)
			}
		})
	}
}
