// Package exchange is one request's way through moat once the HTTP edge
// (package gateway) has read it and knows who is calling, without gin or
// an http.ResponseWriter:
//
//	admit -> reserve -> input chain -> upstream -> output guard -> settle -> record
//
// A Call starts from the edge's facts (request id, address, identity,
// body). Admit applies the rate limits, Reserve holds the worst-case cost
// against the budgets, the input chain (and for a route its template)
// makes what the upstream reads, the Upstream interface sends it, the
// output guard (host/internal/streamguard) judges what comes back, whole
// or streamed to a streamguard.Sink, Settle charges the real usage and
// Record writes the audit line and the metrics. The answer goes to the
// Response interface; an error goes back to the edge, which maps it (Deps.Told,
// Deps.Decide) and writes it.
//
// Messages, CountTokens and ServeRoute are the three exchanges; each returns
// the error the edge must report, or nil once the answer was given.
package exchange
