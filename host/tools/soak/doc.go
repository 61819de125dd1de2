// Package soak runs moat under a bounded mixed load and checks that it
// stays correct: every request gets exactly one valid audit line, the audit
// chain verifies, spend equals settled usage, no budget or rate is
// exceeded, and moat's memory and goroutines stay bounded. The load mixes
// streaming and non-streaming calls, the default built-in chain plus a
// hostile wasm plugin that loops on a marker, rate-limited and
// budget-limited callers, and upstream faults injected through the Claude
// stand-in's MOAT_FAULT: marker. `make soak` runs it for 60 s through
// cmd/soak.
package soak
