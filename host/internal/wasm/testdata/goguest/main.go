// Command goguest is a test plugin built with moat's Go SDK: it redacts a
// configured word until none is left, rejects "forbidden", and misbehaves on
// request (PANIC, LOOP, HOG) so the host's tests can see it fail cleanly.
package main

import (
	"strings"

	"github.com/moat-gateway/moat/sdk"
)

type config struct {
	Word string `json:"word"`
}

var hog [][]byte

func init() {
	sdk.HandleInput(func(r sdk.Request) sdk.Verdict {
		var cfg config
		if err := r.DecodeConfig(&cfg); err != nil {
			return sdk.Reject(err.Error())
		}
		switch {
		case strings.Contains(r.Text, "PANIC"):
			panic("guest asked to panic")
		case strings.Contains(r.Text, "LOOP"):
			for {
			}
		case strings.Contains(r.Text, "HOG"):
			for {
				hog = append(hog, make([]byte, 1<<20))
			}
		case strings.Contains(r.Text, "forbidden"):
			return sdk.Reject("forbidden word")
		}
		if cfg.Word != "" && strings.Contains(r.Text, cfg.Word) {
			t := r.Text
			for strings.Contains(t, cfg.Word) {
				t = strings.ReplaceAll(t, cfg.Word, "")
			}
			sdk.Log(sdk.LevelInfo, "redacted "+cfg.Word)
			return sdk.Modify(t, "redacted")
		}
		return sdk.Allow()
	})
}

func main() {}
