package wasm

import (
	"context"
	"errors"
	"testing"

	"github.com/moat-gateway/moat/sdk/abi"
)

// v2Module is a hand-made ABI v2 plugin whose input hook returns the given
// verdict bytes (nil: the ABI's 0).
func v2Module(verdict []byte) []byte {
	m := abiModule()
	m.export(abi.ExportMarkerV2, 0, m.fn(nil, nil, nil))
	m.export(abi.ExportAlloc, 0, m.fn([]byte{tI32}, []byte{tI32}, nil, i32c(1024)))
	body := i64c(0)
	if verdict != nil {
		body = m.verdictAt(256, string(verdict))
	}
	return m.hook("moat_input", nil, body).bytes()
}

func encodeV2(t *testing.T, v abi.Verdict) []byte {
	t.Helper()
	b, err := abi.AppendVerdictV2(nil, &v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestV2Verdicts(t *testing.T) {
	r := newRuntime(t)
	ctx := context.Background()
	modify := encodeV2(t, abi.ModifyVerdict("new text", "why"))
	tests := []struct {
		name    string
		verdict []byte
		want    abi.Verdict
		wantErr error
	}{
		{name: "zero allows", verdict: nil, want: abi.AllowVerdict()},
		{name: "modify", verdict: modify, want: abi.ModifyVerdict("new text", "why")},
		{name: "reject with finding", verdict: encodeV2(t, abi.Verdict{Action: abi.Reject, Reason: "no", Findings: []abi.Finding{{Rule: "r", Start: 1, End: 3}}}),
			want: abi.Verdict{Action: abi.Reject, Reason: "no", Findings: []abi.Finding{{Rule: "r", Start: 1, End: 3}}}},
		{name: "JSON from a v2 module is refused", verdict: []byte(`{"action":"allow","reason":"x"}`), wantErr: ErrBadResult},
		{name: "unknown action code", verdict: append([]byte{2, 0, 0, 0, 9, 0, 0, 0}, make([]byte, 12)...), wantErr: abi.ErrUnknownAction},
		{name: "truncated", verdict: modify[:len(modify)-1], wantErr: ErrBadResult},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := load(t, r, "v2", v2Module(tt.verdict), Limits{PoolSize: 1})
			v, err := p.Call(ctx, &abi.Request{Phase: abi.PhaseInput, Text: "old text", Context: abi.Context{Kind: abi.KindText, Path: "messages.0"}})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v.Action != tt.want.Action || v.Text != tt.want.Text || v.Reason != tt.want.Reason || len(v.Findings) != len(tt.want.Findings) {
				t.Fatalf("verdict %+v, want %+v", v, tt.want)
			}
		})
	}
}

// TestV2RequestBytes checks what the host writes for a v2 module, by
// reading it back from the instance's memory after a call.
func TestV2RequestBytes(t *testing.T) {
	r := newRuntime(t)
	ctx := context.Background()
	p := load(t, r, "v2", v2Module(nil), Limits{PoolSize: 1})
	req := &abi.Request{Phase: abi.PhaseInput, Text: "héllo", Config: []byte(`{"a":1}`),
		Context: abi.Context{Route: "r", Model: "m", Client: "c", User: "u", RequestID: "id", Kind: abi.KindToolResult, Role: "user", Path: "messages.1.content.0"}}
	if _, err := p.Call(ctx, req); err != nil {
		t.Fatal(err)
	}
	in := <-p.idle
	defer func() { p.idle <- in }()
	b, ok := in.mod.Memory().Read(1024, uint32(abi.RequestSizeV2(req)))
	if !ok {
		t.Fatal("request out of bounds")
	}
	got, err := abi.DecodeRequestV2(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Text != req.Text || string(got.Config) != string(req.Config) || got.Context != req.Context || got.Phase != req.Phase {
		t.Fatalf("guest read %+v, want %+v", got, req)
	}
}
