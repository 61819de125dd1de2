package sdk_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/moat-gateway/moat/sdk"
	"github.com/moat-gateway/moat/sdk/abi"
)

func ExampleHandleInput() {
	// In a plugin's init function:
	sdk.HandleInput(func(r sdk.Request) sdk.Verdict {
		if r.Text == "" {
			return sdk.Reject("empty input")
		}
		return sdk.Allow()
	})
	fmt.Println(sdk.Registered(abi.PhaseInput) != nil, sdk.Registered(abi.PhaseOutput) != nil)
	// Output: true false
}

func ExampleDispatch() {
	upper := func(r sdk.Request) sdk.Verdict { return sdk.Modify(r.Text+"!", "excited") }
	out := sdk.Dispatch(upper, []byte(`{"phase":"input","text":"hi","context":{}}`))
	fmt.Println(string(out))
	// Output: {"action":"modify","text":"hi!","reason":"excited"}
}

func TestDispatch(t *testing.T) {
	req := []byte(`{"phase":"output","text":"x","context":{}}`)
	tests := []struct {
		name    string
		h       sdk.Handler
		req     []byte
		wantNil bool
		wantErr error
		want    abi.Action
	}{
		{name: "plain allow is the ABI's 0", h: func(sdk.Request) sdk.Verdict { return sdk.Allow() }, req: req, wantNil: true},
		{name: "allow with reason is sent", h: func(sdk.Request) sdk.Verdict { v := sdk.Allow(); v.Reason = "ok"; return v }, req: req, want: abi.Allow},
		{name: "reject", h: func(sdk.Request) sdk.Verdict { return sdk.Reject("no") }, req: req, want: abi.Reject},
		{name: "no handler fails closed", h: nil, req: req, wantErr: abi.ErrUnknownAction},
		{name: "bad request fails closed", h: func(sdk.Request) sdk.Verdict { return sdk.Allow() }, req: []byte("{"), wantErr: abi.ErrUnknownAction},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := sdk.Dispatch(tt.h, tt.req)
			if tt.wantNil {
				if out != nil {
					t.Fatalf("got %s, want nil", out)
				}
				return
			}
			v, err := abi.DecodeVerdict(out)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("decode %s: err %v, want %v", out, err, tt.wantErr)
				}
				var m map[string]string
				_ = json.Unmarshal(out, &m)
				if m["reason"] == "" {
					t.Errorf("fail-closed verdict %s has no reason", out)
				}
				return
			}
			if err != nil || v.Action != tt.want {
				t.Fatalf("%s: %+v %v", out, v, err)
			}
		})
	}
}
