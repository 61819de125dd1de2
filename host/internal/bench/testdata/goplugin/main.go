// Command goplugin is the benchmark's user-supplied Go plugin, built with
// moat's Go SDK: an input sanitizer that rejects text naming a configured
// topic (case-insensitive) and trims runs of blank lines, the kind of small
// policy check a team writes for itself.
package main

import (
	"strings"

	"github.com/moat-gateway/moat/sdk"
)

type config struct {
	Deny []string `json:"deny"`
}

func init() {
	sdk.HandleInput(func(r sdk.Request) sdk.Verdict {
		var cfg config
		if err := r.DecodeConfig(&cfg); err != nil {
			return sdk.Reject("topic-guard: " + err.Error())
		}
		lower := strings.ToLower(r.Text)
		for _, d := range cfg.Deny {
			if d != "" && strings.Contains(lower, strings.ToLower(d)) {
				return sdk.Reject("topic-guard: the text mentions " + d)
			}
		}
		if strings.Contains(r.Text, "\n\n\n") {
			t := r.Text
			for strings.Contains(t, "\n\n\n") {
				t = strings.ReplaceAll(t, "\n\n\n", "\n\n")
			}
			return sdk.Modify(t, "topic-guard: collapsed blank lines")
		}
		return sdk.Allow()
	})
}

func main() {}
