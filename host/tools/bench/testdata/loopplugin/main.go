// Command loopplugin is the benchmark's hostile plugin, built with moat's
// Go SDK: its input handler never returns. moat must stop it at its
// deadline without stalling the other requests it serves.
package main

import "github.com/moat-gateway/moat/sdk"

var spins uint64

func init() {
	sdk.HandleInput(func(r sdk.Request) sdk.Verdict {
		for {
			spins++
		}
	})
}

func main() {}
