// Package e2e holds moat's end-to-end tests: a real moat (server.Run) on a
// loopback port, pointed at the in-repo Claude stand-in, driven by the
// official Anthropic SDK over real sockets. It has no non-test code.
package e2e
