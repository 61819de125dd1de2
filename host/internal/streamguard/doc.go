// Package streamguard judges what a client receives from the model, whole
// or streamed, without knowing HTTP.
//
// Where a response goes: the exchange (host/internal/exchange) builds a
// Guard from the request's output stages (the output chain, and stages
// with declared capabilities: Schema for a JSON answer, which Repairs;
// Canary, which SeesOriginal and holds back only what could still begin
// the canary) and a Judge that adds the key scrubber and protects signed
// thinking. A whole response goes through anthropic.Response.Judge with
// the Judge. A stream goes through Relay: each upstream event is read,
// parsed once, passed through anthropic.OutputStream (which calls the
// Judge's Feed and Flush for text and thinking deltas), and what may be
// released is written to a Sink; text is held back only as far as a
// stage's hold asks, and judged whenever the upstream has nothing more
// buffered, so paced text leaves at once. Relay returns an Outcome; the
// caller settles and records the call, then ends the stream with Finish
// (message_stop, or an error event made by CleanMessage).
//
// The guard dispatches on capabilities (Caps), never on a stage's name.
package streamguard
