package streamguard

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/moat-gateway/moat/host/internal/pipeline"
	"github.com/moat-gateway/moat/host/internal/prompt"
	"github.com/moat-gateway/moat/sdk/abi"
)

// TestGuardCanaryOnPacedStream feeds a text block to the output guard in
// 3-byte deltas, each judged as it arrives (nothing more buffered), as a
// paced upstream delivers it: text that cannot start the canary is
// released at once, and a canary arriving over many deltas is refused
// before its last byte is released.
func TestGuardCanaryOnPacedStream(t *testing.T) {
	canary := prompt.NewCanary()
	tests := []struct {
		name, text string
		leak       bool
	}{
		{"canary as written", "a long harmless preamble first, then: " + canary + " and more", true},
		{"canary spaced out", "the marker: " + strings.Join(strings.Split(strings.TrimPrefix(canary, prompt.CanaryPrefix), ""), " "), true},
		{"no canary", "nothing secret here, only words and 0123 digits", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			og := New(context.Background(), []Stage{Canary(canary)}, abi.Context{}, &pipeline.Verdicts{})
			var bg block
			var released strings.Builder
			var err error
			for i := 0; i < len(tc.text) && err == nil; i += 3 {
				var out string
				out, err = og.feed(&bg, tc.text[i:min(i+3, len(tc.text))], true)
				released.WriteString(out)
				if err == nil && len(released.String()) < i-len(canary) {
					t.Fatalf("after %d bytes only %d released: the guard holds more than a canary", i+3, released.Len())
				}
			}
			if err == nil {
				var out string
				out, err = og.flush(&bg)
				released.WriteString(out)
			}
			var rej *pipeline.RejectError
			if tc.leak != errors.As(err, &rej) {
				t.Fatalf("err = %v, want a canary refusal: %v", err, tc.leak)
			}
			if tc.leak && prompt.ContainsCanary(released.String(), canary) {
				t.Fatalf("the canary was released: %q", released.String())
			}
			if !tc.leak && released.String() != tc.text {
				t.Fatalf("released %q, want %q", released.String(), tc.text)
			}
		})
	}
}
