// Command goplugin is the benchmark's user-supplied Go plugin, written as
// `moat plugin new --lang go` scaffolds one: an input sanitizer that
// rejects text naming a configured topic (ASCII case ignored) and trims
// runs of blank lines, the kind of small policy check a team writes for
// itself. Its config is decoded once per distinct config (sdk.Config), and
// the topics are found without lowering a copy of the text (sdk.Phrases).
package main

import (
	"strings"

	"github.com/moat-gateway/moat/sdk"
)

type config struct {
	Deny []string `json:"deny"`

	phrases *sdk.Phrases
}

var cfgCache = sdk.Config[config]{Prepare: func(c *config) error {
	c.phrases = sdk.NewPhrases(c.Deny...)
	return nil
}}

func init() {
	sdk.HandleInput(func(r sdk.Request) sdk.Verdict {
		cfg, err := cfgCache.Get(r)
		if err != nil {
			return sdk.Reject("topic-guard: " + err.Error())
		}
		if which, _ := cfg.phrases.Find(r.Text); which >= 0 {
			return sdk.Reject("topic-guard: the text mentions " + cfg.Deny[which])
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
