package anthropic

import (
	"encoding/json"
	"strings"
	"testing"
)

// benchRequest is a Messages request like the benchmark's: one 4 KiB user
// prompt of English prose.
func benchRequest(tb testing.TB, stream bool) []byte {
	tb.Helper()
	// English prose in paragraphs (escaped newlines), as the benchmark's.
	prompt := strings.Repeat("The spring season at the Riverside Community Garden began with more energy.\n\n", 54)[:4096]
	b, err := json.Marshal(map[string]any{
		"model": "claude-sonnet-5-5", "max_tokens": 1024, "stream": stream,
		"messages": []map[string]any{{"role": "user", "content": prompt}},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// BenchmarkDecodeRequest4K is the strict request decode of a 4 KiB
// prompt; BenchmarkDecodeRequest4KBaseline is encoding/json's Valid on the
// same bytes (the least any reader must do).
func BenchmarkDecodeRequest4K(b *testing.B) {
	body := benchRequest(b, false)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeRequest(body, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeRequest4KBaseline(b *testing.B) {
	body := benchRequest(b, false)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if !json.Valid(body) {
			b.Fatal("invalid")
		}
	}
}
