//go:build wasip1

// Command wasm builds the prompt-leak built-in as a sandboxed plugin module
// (scripts/build-plugins.sh writes it to host/internal/builtin/wasm/prompt-leak.wasm).
//
// moat:builtin prompt-leak
package main

import (
	"github.com/moat-gateway/moat/plugins/promptleak"
	"github.com/moat-gateway/moat/sdk"
)

func init() {
	sdk.HandleOutput(promptleak.Output)
}

func main() {}
