//go:build wasip1

// Command wasm builds the json-schema built-in as a sandboxed plugin module
// (scripts/build-plugins.sh writes it to host/internal/builtin/wasm/json-schema.wasm).
//
// moat:builtin json-schema
package main

import (
	"github.com/moat-gateway/moat/plugins/jsonschema"
	"github.com/moat-gateway/moat/sdk"
)

func init() {
	sdk.HandleOutput(jsonschema.Output)
}

func main() {}
