//go:build wasip1

// Command wasm builds the unicode-clean built-in as a sandboxed plugin module
// (scripts/build-plugins.sh writes it to host/internal/builtin/wasm/unicode-clean.wasm).
//
// moat:builtin unicode-clean
package main

import (
	"github.com/moat-gateway/moat/plugins/unicodeclean"
	"github.com/moat-gateway/moat/sdk"
)

func init() {
	sdk.HandleInput(unicodeclean.Input)
}

func main() {}
