package standin

import (
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// EchoPrefix starts the default reply, which is followed by the beginning of
// the last user message (at most EchoMaxBytes of it, cut on a UTF-8 boundary).
const (
	EchoPrefix   = "You said: "
	EchoMaxBytes = 200
)

// Usage overrides the token counts the stand-in reports (see [Server.SetUsage]).
type Usage struct {
	InputTokens              int
	OutputTokens             int
	CacheCreationInputTokens int
	CacheReadInputTokens     int
}

// preparedReply is a reply text with its deltas and their SSE frames encoded
// once, so that a fixed reply costs nothing to re-send.
type preparedReply struct {
	text   string
	frames [][]byte // one content_block_delta frame per delta
	// content and blockFrames are set by SetContent: the blocks of a
	// non-streaming reply and every content event of a streamed one.
	content     []json.RawMessage
	blockFrames [][]byte
	// template is the Content a reply with SystemPlaceholder came from.
	template *Content
}

func (s *Server) prepare(text string) *preparedReply {
	chunks := splitDeltas(text, s.opts.DeltaSize)
	p := &preparedReply{text: text, frames: make([][]byte, len(chunks))}
	for i, c := range chunks {
		p.frames[i] = deltaFrame(c)
	}
	return p
}

// SetReply makes every following Messages request answer text. See
// [Server.SetReplies].
func (s *Server) SetReply(text string) { s.SetReplies([]string{text}) }

// SetReplies queues replies: each Messages request takes the next one, and
// the last one is repeated once the others are used. An empty or nil list
// goes back to the default echo reply (EchoPrefix plus the last user text).
func (s *Server) SetReplies(texts []string) {
	prepared := make([]*preparedReply, len(texts))
	for i, t := range texts {
		prepared[i] = s.prepare(t)
	}
	s.replyMu.Lock()
	s.replies = prepared
	s.replyMu.Unlock()
}

// SetUsage makes every following response report u instead of the estimated
// counts; nil goes back to estimating (see [EstimateTokens]).
func (s *Server) SetUsage(u *Usage) {
	s.replyMu.Lock()
	defer s.replyMu.Unlock()
	if u == nil {
		s.usage = nil
		return
	}
	c := *u
	s.usage = &c
}

// EchoSystemMarker in the last user message makes the reply repeat the
// request's system prompt, like a model leaking it; tests of the canary use
// it.
const EchoSystemMarker = "MOAT_ECHO_SYSTEM"

// nextReply returns the reply for a request and the usage override, if any.
// With consume it moves the reply queue on.
func (s *Server) nextReply(r *request, consume bool) (*preparedReply, *Usage) {
	s.replyMu.Lock()
	var p *preparedReply
	if len(s.replies) > 0 {
		p = s.replies[0]
		if consume && len(s.replies) > 1 {
			s.replies = s.replies[1:]
		}
	}
	u := s.usage
	s.replyMu.Unlock()
	switch {
	case strings.Contains(r.LastUser, EchoSystemMarker):
		// A model tricked into revealing its instructions.
		p = s.prepare("My instructions were: " + r.System)
	case p == nil:
		p = s.prepare(EchoPrefix + prefixUTF8(r.LastUser, EchoMaxBytes))
	default:
		p = s.withSystem(p, r.System)
	}
	return p, u
}

// prefixUTF8 returns at most n bytes of s without splitting a character.
func prefixUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// splitDeltas cuts text into stream deltas. With size > 0 each delta holds
// up to size bytes, cut back to a character boundary but always at least one
// character. With size <= 0 each delta holds about three words. The deltas
// concatenate to text, and none is empty.
func splitDeltas(text string, size int) []string {
	if text == "" {
		return nil
	}
	var out []string
	for len(text) > 0 {
		n := nextCut(text, size)
		out = append(out, text[:n])
		text = text[n:]
	}
	return out
}

// wordsPerDelta is the default delta size in words.
const wordsPerDelta = 3

func nextCut(text string, size int) int {
	if size <= 0 {
		words := 0
		for i := 0; i < len(text); i++ {
			if text[i] == ' ' || text[i] == '\n' {
				words++
				if words == wordsPerDelta {
					return i + 1
				}
			}
		}
		return len(text)
	}
	if len(text) <= size {
		return len(text)
	}
	n := size
	for n > 0 && !utf8.RuneStart(text[n]) {
		n--
	}
	if n == 0 {
		// One character longer than size: send it whole.
		_, w := utf8.DecodeRuneInString(text)
		n = w
	}
	return n
}
