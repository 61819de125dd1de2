//go:build wasip1

// Command wasm builds the allow-patterns built-in as a sandboxed plugin module
// (scripts/build-plugins.sh writes it to host/internal/builtin/wasm/allow-patterns.wasm).
//
// moat:builtin allow-patterns
package main

import (
	"github.com/moat-gateway/moat/plugins/allowpatterns"
	"github.com/moat-gateway/moat/sdk"
)

func init() {
	sdk.HandleOutput(allowpatterns.Output)
}

func main() {}
