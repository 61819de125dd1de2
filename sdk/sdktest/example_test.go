package sdktest_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/moat-gateway/moat/sdk"
	"github.com/moat-gateway/moat/sdk/abi"
	"github.com/moat-gateway/moat/sdk/sdktest"
)

// redact removes the configured word until none is left.
func redact(r sdk.Request) sdk.Verdict {
	var cfg struct {
		Word string `json:"word"`
	}
	if err := r.DecodeConfig(&cfg); err != nil || cfg.Word == "" {
		return sdk.Reject("config needs a word")
	}
	t := r.Text
	for strings.Contains(t, cfg.Word) {
		t = strings.ReplaceAll(t, cfg.Word, "")
	}
	if t == r.Text {
		return sdk.Allow()
	}
	return sdk.Modify(t, "redacted "+cfg.Word)
}

func ExampleCall() {
	v, err := sdktest.Call(redact, abi.PhaseInput, "a <<||>> b", map[string]string{"word": "<|"})
	fmt.Println(v.Action, v.Text, err)
	// Output: modify a >> b <nil>
}

func TestRedact(t *testing.T) {
	cfg := map[string]string{"word": "<|"}
	sdktest.Run(t, redact,
		sdktest.Case{Text: "clean", Config: cfg, Want: abi.Allow},
		sdktest.Case{Text: "x<|y", Config: cfg, Want: abi.Modify, WantText: "xy"},
		sdktest.Case{Name: "nested", Text: "<<||", Config: cfg, Want: abi.Modify, WantText: ""},
		sdktest.Case{Name: "no config", Text: "x", Want: abi.Reject, WantReason: "needs a word"},
		sdktest.Case{Name: "output phase", Phase: abi.PhaseOutput, Text: "<|", Config: cfg, Want: abi.Modify},
	)
}

func TestCallFailures(t *testing.T) {
	panicky := func(sdk.Request) sdk.Verdict { panic("boom") }
	if _, err := sdktest.Call(panicky, abi.PhaseInput, "x", nil); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("panic: err = %v", err)
	}
	bad := func(sdk.Request) sdk.Verdict { return sdk.Verdict{Action: "explode"} }
	if _, err := sdktest.Call(bad, abi.PhaseInput, "x", nil); err == nil {
		t.Error("unknown action accepted")
	}
	if _, err := sdktest.Call(nil, abi.PhaseInput, "x", nil); err == nil {
		t.Error("missing handler accepted")
	}
	sdktest.Run(t, bad, sdktest.Case{Name: "WantErr", Text: "x", WantErr: true})
}
