//go:build race

package e2e

// faultRace is true when the race detector is on; it caps live goroutines
// at 8128, so the connection-count tests scale down.
const faultRace = true
