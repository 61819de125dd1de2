package sdk_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/moat-gateway/moat/sdk"
	"github.com/moat-gateway/moat/sdk/abi"
)

func TestDispatchV2(t *testing.T) {
	req, err := abi.AppendRequestV2(nil, &abi.Request{Phase: abi.PhaseOutput, Text: "x", Config: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		h         sdk.Handler
		req       []byte
		wantEmpty bool
		wantErr   error
		want      abi.Action
	}{
		{name: "plain allow is the ABI's 0", h: func(sdk.Request) sdk.Verdict { return sdk.Allow() }, req: req, wantEmpty: true},
		{name: "allow with reason is sent", h: func(sdk.Request) sdk.Verdict { v := sdk.Allow(); v.Reason = "ok"; return v }, req: req, want: abi.Allow},
		{name: "reject", h: func(sdk.Request) sdk.Verdict { return sdk.Reject("no") }, req: req, want: abi.Reject},
		{name: "modify", h: func(r sdk.Request) sdk.Verdict { return sdk.Modify(r.Text+"!", "") }, req: req, want: abi.Modify},
		{name: "unknown action fails closed", h: func(sdk.Request) sdk.Verdict { return sdk.Verdict{Action: "explode"} }, req: req, wantErr: abi.ErrUnknownAction},
		{name: "no handler fails closed", h: nil, req: req, wantErr: abi.ErrUnknownAction},
		{name: "bad request fails closed", h: func(sdk.Request) sdk.Verdict { return sdk.Allow() }, req: req[:20], wantErr: abi.ErrUnknownAction},
		{name: "JSON request fails closed", h: func(sdk.Request) sdk.Verdict { return sdk.Allow() }, req: []byte(`{"phase":"input","text":"x","context":{}}`), wantErr: abi.ErrUnknownAction},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := sdk.DispatchV2(tt.h, tt.req, nil)
			if tt.wantEmpty {
				if len(out) != 0 {
					t.Fatalf("got %q, want nothing", out)
				}
				return
			}
			v, err := abi.DecodeVerdictV2(out)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("decode %q: err %v, want %v", out, err, tt.wantErr)
				}
				return
			}
			if err != nil || v.Action != tt.want {
				t.Fatalf("%q: %+v %v", out, v, err)
			}
		})
	}
}

func ExampleDispatchV2() {
	upper := func(r sdk.Request) sdk.Verdict { return sdk.Modify(r.Text+"!", "excited") }
	req, _ := abi.AppendRequestV2(nil, &abi.Request{Phase: abi.PhaseInput, Text: "hi"})
	v, err := abi.DecodeVerdictV2(sdk.DispatchV2(upper, req, nil))
	fmt.Printf("%s %q %q %v\n", v.Action, v.Text, v.Reason, err)
	// Output: modify "hi!" "excited" <nil>
}
