//go:build wasip1

// Command wasm builds the injection-classifier built-in as a sandboxed plugin
// module (scripts/build-plugins.sh writes it to
// host/internal/builtin/wasm/injection-classifier.wasm).
//
// moat:builtin injection-classifier
package main

import (
	"github.com/moat-gateway/moat/plugins/injclassifier"
	"github.com/moat-gateway/moat/sdk"
)

func init() {
	sdk.HandleInput(injclassifier.Input)
}

func main() {}
