//go:build wasip1

// Command wasm builds the markdown-links built-in as a sandboxed plugin
// module (scripts/build-plugins.sh writes it to
// host/internal/builtin/wasm/markdown-links.wasm).
//
// moat:builtin markdown-links
package main

import (
	"github.com/moat-gateway/moat/plugins/mdlinks"
	"github.com/moat-gateway/moat/sdk"
)

func init() {
	sdk.HandleOutput(mdlinks.Output)
}

func main() {}
