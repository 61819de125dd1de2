//go:build race

package e2e

// lcRace reports whether this test binary was built with -race; the CLI
// test builds moat the same way so it reuses the compiled packages.
const lcRace = true
