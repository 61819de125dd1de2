//go:build wasip1

// Command wasm builds the deny-patterns built-in as a sandboxed plugin module
// (scripts/build-plugins.sh writes it to host/internal/builtin/wasm/deny-patterns.wasm).
//
// moat:builtin deny-patterns
package main

import (
	"github.com/moat-gateway/moat/plugins/denypatterns"
	"github.com/moat-gateway/moat/sdk"
)

func init() {
	sdk.HandleInput(denypatterns.Input)
	sdk.HandleOutput(denypatterns.Output)
}

func main() {}
