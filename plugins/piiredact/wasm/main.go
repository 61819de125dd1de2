//go:build wasip1

// Command wasm builds the pii-redact built-in as a sandboxed plugin module
// (scripts/build-plugins.sh writes it to host/internal/builtin/wasm/pii-redact.wasm).
//
// moat:builtin pii-redact
package main

import (
	"github.com/moat-gateway/moat/plugins/piiredact"
	"github.com/moat-gateway/moat/sdk"
)

func init() {
	sdk.HandleInput(piiredact.Input)
	sdk.HandleOutput(piiredact.Output)
}

func main() {}
