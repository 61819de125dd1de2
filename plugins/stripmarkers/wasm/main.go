//go:build wasip1

// Command wasm builds the strip-markers built-in as a sandboxed plugin module
// (scripts/build-plugins.sh writes it to host/internal/builtin/wasm/strip-markers.wasm).
//
// moat:builtin strip-markers
package main

import (
	"github.com/moat-gateway/moat/plugins/stripmarkers"
	"github.com/moat-gateway/moat/sdk"
)

func init() {
	sdk.HandleInput(stripmarkers.Input)
}

func main() {}
