//go:build !wasip1

package sdk

import "embed"

// Source is the Go SDK's own module (go.mod and the sources of sdk,
// sdk/abi and sdk/sdktest; new skips the tests), which `moat plugin new --lang
// go` writes next to a new plugin as a local module: a project builds
// with the SDK this moat was built with, without a moat checkout and
// without fetching the SDK from anywhere. Not in the wasip1 build, so
// plugins do not carry it.
//
//go:embed go.mod *.go abi/*.go sdktest/*.go
var Source embed.FS
