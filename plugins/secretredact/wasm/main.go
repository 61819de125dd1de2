//go:build wasip1

// Command wasm builds the secret-redact built-in as a sandboxed plugin module
// (scripts/build-plugins.sh writes it to host/internal/builtin/wasm/secret-redact.wasm).
//
// moat:builtin secret-redact
package main

import (
	"github.com/moat-gateway/moat/plugins/secretredact"
	"github.com/moat-gateway/moat/sdk"
)

func init() {
	sdk.HandleInput(secretredact.Input)
	sdk.HandleOutput(secretredact.Output)
}

func main() {}
