// Package assemblyscript holds moat's AssemblyScript plugin SDK (an npm
// package: package.json, assembly/) and the Go test that runs its compiled
// example and fixture in moat's real plugin runtime, proving ABI v1 is
// language-neutral. Build the modules with `npm ci && npm run build` here.
package assemblyscript
