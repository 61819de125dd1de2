// Package assemblyscript holds moat's AssemblyScript plugin SDK (an npm
// package: package.json, assembly/) and the Go test that runs its compiled
// example and fixture in moat's real plugin runtime, proving ABI v1 is
// language-neutral. Build the modules with `npm ci && npm run build` here.
package assemblyscript

import "embed"

// Source is the SDK's AssemblyScript source (assembly/), which
// `moat plugin new --lang as` writes into a new project, so a project
// always gets the SDK this moat was built with.
//
//go:embed assembly/*.ts assembly/tsconfig.json
var Source embed.FS
