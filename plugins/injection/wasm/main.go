//go:build wasip1

// Command wasm builds the injection-heuristics built-in as a sandboxed plugin module
// (scripts/build-plugins.sh writes it to host/internal/builtin/wasm/injection-heuristics.wasm).
//
// moat:builtin injection-heuristics
package main

import (
	"github.com/moat-gateway/moat/plugins/injection"
	"github.com/moat-gateway/moat/sdk"
)

func init() {
	sdk.HandleInput(injection.Input)
}

func main() {}
