package redaction

import (
	"testing"

	"github.com/moat-gateway/moat/sdk/abi"
)

func TestVerdictAndReplace(t *testing.T) {
	label := func(r string) string { return "[" + r + "]" }
	if v := Verdict("clean", nil, label, "x"); v.Action != abi.Allow {
		t.Fatalf("no findings: %+v", v)
	}
	ms := []abi.Finding{{Rule: "A", Start: 0, End: 2}, {Rule: "B", Start: 5, End: 7}}
	v := Verdict("ab cdef gh", ms, label, "why")
	if v.Action != abi.Modify || v.Text != "[A] cd[B] gh" || v.Reason != "why" || len(v.Findings) != 2 {
		t.Fatalf("verdict %+v", v)
	}
	if got := Replace("same", nil, label); got != "same" {
		t.Fatalf("Replace without findings = %q", got)
	}
}
