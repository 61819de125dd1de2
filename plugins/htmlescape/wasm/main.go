//go:build wasip1

// Command wasm builds the html-escape built-in as a sandboxed plugin module
// (scripts/build-plugins.sh writes it to host/internal/builtin/wasm/html-escape.wasm).
//
// moat:builtin html-escape
package main

import (
	"github.com/moat-gateway/moat/plugins/htmlescape"
	"github.com/moat-gateway/moat/sdk"
)

func init() {
	sdk.HandleOutput(htmlescape.Output)
}

func main() {}
