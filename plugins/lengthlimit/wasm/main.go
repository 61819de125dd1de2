//go:build wasip1

// Command wasm builds the length-limit built-in as a sandboxed plugin module
// (scripts/build-plugins.sh writes it to host/internal/builtin/wasm/length-limit.wasm).
//
// moat:builtin length-limit
package main

import (
	"github.com/moat-gateway/moat/plugins/lengthlimit"
	"github.com/moat-gateway/moat/sdk"
)

func init() {
	sdk.HandleInput(lengthlimit.Input)
	sdk.HandleOutput(lengthlimit.Output)
}

func main() {}
