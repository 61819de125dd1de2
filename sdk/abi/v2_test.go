package abi_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"

	"github.com/moat-gateway/moat/sdk/abi"
)

func TestRequestV2RoundTrip(t *testing.T) {
	tests := []struct {
		name string
		req  abi.Request
	}{
		{"empty input", abi.Request{Phase: abi.PhaseInput}},
		{"everything", abi.Request{Phase: abi.PhaseOutput, Text: "Ça va? 日本語 😀 \x00", Config: []byte(`{"deny":["x"]}`),
			Context: abi.Context{Route: "r", Model: "m", Client: "c", User: "u", RequestID: "id", Kind: abi.KindToolInput, Role: "user", Path: "messages.0.content"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := abi.AppendRequestV2(nil, &tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) != abi.RequestSizeV2(&tt.req) {
				t.Fatalf("encoded %d bytes, size says %d", len(b), abi.RequestSizeV2(&tt.req))
			}
			for name, decode := range map[string]func([]byte) (abi.Request, error){"copy": abi.DecodeRequestV2, "shared": abi.DecodeRequestV2Shared} {
				got, err := decode(b)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, tt.req) {
					t.Fatalf("%s: got %+v, want %+v", name, got, tt.req)
				}
			}
		})
	}
}

func TestRequestV2Refused(t *testing.T) {
	good, _ := abi.AppendRequestV2(nil, &abi.Request{Phase: abi.PhaseInput, Text: "hello"})
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	tests := []struct {
		name string
		b    []byte
	}{
		{"short", good[:10]},
		{"version 1", mut(func(b []byte) []byte { b[0] = 1; return b })},
		{"phase 3", mut(func(b []byte) []byte { b[4] = 3; return b })},
		{"text longer than the body", mut(func(b []byte) []byte { b[8] = 6; return b })},
		{"trailing byte", append(append([]byte(nil), good...), 'x')},
		{"huge length", mut(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[12:], 0xffffffff); return b })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := abi.DecodeRequestV2(tt.b); !errors.Is(err, abi.ErrBadRequest) {
				t.Fatalf("err %v, want ErrBadRequest", err)
			}
		})
	}
	if err := abi.PutRequestV2(make([]byte, 3), &abi.Request{Phase: abi.PhaseInput}); err == nil {
		t.Error("PutRequestV2 accepted a buffer of the wrong size")
	}
	if _, err := abi.AppendRequestV2(nil, &abi.Request{Phase: "sideways"}); err == nil {
		t.Error("AppendRequestV2 accepted an unknown phase")
	}
}

func TestVerdictV2(t *testing.T) {
	tests := []struct {
		name string
		v    abi.Verdict
		want abi.Verdict // after the round trip
	}{
		{"allow", abi.AllowVerdict(), abi.AllowVerdict()},
		{"allow drops text", abi.Verdict{Action: abi.Allow, Text: "echo", Reason: "fine"}, abi.Verdict{Action: abi.Allow, Reason: "fine"}},
		{"modify to empty", abi.ModifyVerdict("", "emptied"), abi.ModifyVerdict("", "emptied")},
		{"reject with findings", abi.Verdict{Action: abi.Reject, Reason: "r", Findings: []abi.Finding{{Rule: "a", Start: 1, End: 2}, {Rule: "日本", Start: 0, End: 9}}},
			abi.Verdict{Action: abi.Reject, Reason: "r", Findings: []abi.Finding{{Rule: "a", Start: 1, End: 2}, {Rule: "日本", Start: 0, End: 9}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := abi.AppendVerdictV2(nil, &tt.v)
			if err != nil {
				t.Fatal(err)
			}
			got, err := abi.DecodeVerdictV2(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	if _, err := abi.AppendVerdictV2(nil, &abi.Verdict{Action: "explode"}); !errors.Is(err, abi.ErrUnknownAction) {
		t.Errorf("unknown action: err %v", err)
	}
}

func TestVerdictV2Refused(t *testing.T) {
	enc := func(v abi.Verdict) []byte { b, _ := abi.AppendVerdictV2(nil, &v); return b }
	modify := enc(abi.ModifyVerdict("new", "why"))
	reject := enc(abi.Verdict{Action: abi.Reject, Findings: []abi.Finding{{Rule: "r", End: 1}}})
	set := func(b []byte, off int, v uint32) []byte {
		b = append([]byte(nil), b...)
		binary.LittleEndian.PutUint32(b[off:], v)
		return b
	}
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, abi.ErrBadVerdict},
		{"version", set(modify, 0, 1), abi.ErrVersion},
		{"action 0", set(modify, 4, 0), abi.ErrUnknownAction},
		{"action 4", set(modify, 4, 4), abi.ErrUnknownAction},
		{"text on reject", set(modify, 4, abi.ActionCodeReject), abi.ErrBadVerdict},
		{"text overruns", set(modify, 8, 100), abi.ErrBadVerdict},
		{"reason overruns", set(modify, 12, 1<<31), abi.ErrBadVerdict},
		{"findings overrun", set(reject, 16, 1000), abi.ErrBadVerdict},
		{"rule overruns", set(reject, abi.VerdictHeaderV2+8, 9), abi.ErrBadVerdict},
		{"trailing bytes", append(append([]byte(nil), modify...), 0), abi.ErrBadVerdict},
		{"invalid UTF-8 text", bytes.Replace(modify, []byte("new"), []byte("n\xffw"), 1), abi.ErrBadVerdict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := abi.DecodeVerdictV2(tt.b); !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
		})
	}
}

// FuzzDecodeRequestV2 checks the request decoder never panics and that
// what it accepts re-encodes to the same bytes.
func FuzzDecodeRequestV2(f *testing.F) {
	seed, _ := abi.AppendRequestV2(nil, &abi.Request{Phase: abi.PhaseInput, Text: "hi", Config: []byte(`{}`), Context: abi.Context{Route: "r"}})
	f.Add(seed)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := abi.DecodeRequestV2(b)
		shared, serr := abi.DecodeRequestV2Shared(b)
		if (err == nil) != (serr == nil) || !reflect.DeepEqual(r, shared) {
			t.Fatalf("copying and shared decoders disagree: %+v %v / %+v %v", r, err, shared, serr)
		}
		if err != nil {
			return
		}
		again, err := abi.AppendRequestV2(nil, &r)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encoding %q gave %q, %v", b, again, err)
		}
	})
}

// FuzzDecodeVerdictV2 checks the verdict decoder never panics and that
// what it accepts re-encodes to the same bytes.
func FuzzDecodeVerdictV2(f *testing.F) {
	seed, _ := abi.AppendVerdictV2(nil, &abi.Verdict{Action: abi.Modify, Text: "t", Reason: "r", Findings: []abi.Finding{{Rule: "x", Start: 1, End: 2}}})
	f.Add(seed)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := abi.DecodeVerdictV2(b)
		if err != nil {
			return
		}
		again, err := abi.AppendVerdictV2(nil, &v)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encoding %q gave %q, %v", b, again, err)
		}
	})
}
