package bench

// Benchmarks of request-path hot spots that need cross-package setup: the
// Messages request decode/encode, the unforgeable wrapping of a 4 KiB
// prompt, and SSE re-emission of a real stand-in stream. Each reports its
// time as a ratio to a baseline measured in the same run (x-... metrics),
// never as a bare absolute.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/moat-gateway/moat/host/internal/anthropic"
	"github.com/moat-gateway/moat/host/internal/prompt"
	"github.com/moat-gateway/moat/host/tools/standin"
)

// standinStream returns the bytes of a real streamed reply of ReplyText
// from the stand-in.
func standinStream(tb testing.TB) []byte {
	tb.Helper()
	si := standin.New(standin.Options{MaxRecorded: -1})
	si.SetReply(ReplyText)
	req := httptest.NewRequest(http.MethodPost, "/v1/messages", bytes.NewReader(RequestBody(true)))
	req.Header.Set("X-Api-Key", "k")
	req.Header.Set("Anthropic-Version", "2023-06-01")
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	si.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), []byte("message_stop")) {
		tb.Fatalf("stand-in stream: status %d: %.300s", rec.Code, rec.Body.String())
	}
	return rec.Body.Bytes()
}

// reemit reads every event of stream and writes it to w, as moat does
// for a pass-through stream.
func reemit(stream []byte, w io.Writer) (int, error) {
	er := anthropic.NewEventReader(bytes.NewReader(stream))
	n := 0
	for {
		ev, err := er.Next()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if err := anthropic.WriteEvent(w, ev); err != nil {
			return n, err
		}
		n++
	}
}

// lineCopy is the baseline for reemit: copy the stream line by line.
func lineCopy(stream []byte, w io.Writer) error {
	br := bufio.NewReaderSize(bytes.NewReader(stream), 32<<10)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			if _, werr := w.Write(line); werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// wrapBlock wraps text as moat does on a request path.
func wrapBlock(text string) string {
	return prompt.NewWrapper(prompt.DefaultTag, prompt.DefaultLabel, text).Block(text)
}

// escapeConcat is the baseline for wrapBlock: escape and concatenate.
func escapeConcat(text string) string {
	return prompt.DefaultLabel + "\n<user_input>\n" + html.EscapeString(text) + "\n</user_input>"
}

// decodeWrapEncode decodes a request, wraps its user text and re-encodes it.
func decodeWrapEncode(body []byte) ([]byte, error) {
	r, err := anthropic.DecodeRequest(body, anthropic.Options{})
	if err != nil {
		return nil, err
	}
	if err := r.EachText(func(seg anthropic.Segment, s string) (string, error) {
		if !seg.Wrap {
			return s, nil
		}
		return wrapBlock(s), nil
	}); err != nil {
		return nil, err
	}
	return r.Encode()
}

// mapWrapEncode is the baseline for decodeWrapEncode: a generic map.
func mapWrapEncode(body []byte) ([]byte, error) {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, err
	}
	msgs, _ := m["messages"].([]any)
	for _, mm := range msgs {
		msg, _ := mm.(map[string]any)
		if s, ok := msg["content"].(string); ok && msg["role"] == "user" {
			msg["content"] = escapeConcat(s)
		}
	}
	return json.Marshal(m)
}

// TestHotPathFixtures checks that what the benchmarks measure works.
func TestHotPathFixtures(t *testing.T) {
	stream := standinStream(t)
	var out bytes.Buffer
	n, err := reemit(stream, &out)
	if err != nil {
		t.Fatal(err)
	}
	if n < 20 || !bytes.Equal(out.Bytes(), stream) {
		t.Errorf("re-emitted %d events; identical to the input: %v", n, bytes.Equal(out.Bytes(), stream))
	}
	var copied bytes.Buffer
	if err := lineCopy(stream, &copied); err != nil || !bytes.Equal(copied.Bytes(), stream) {
		t.Errorf("line copy: %v", err)
	}
	body := RequestBody(false)
	r, err := anthropic.DecodeRequest(body, anthropic.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if enc, err := r.Encode(); err != nil || !bytes.Equal(enc, body) {
		t.Errorf("unchanged request not passed through as is: %v", err)
	}
	wrapped, err := decodeWrapEncode(body)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Messages []struct{ Content string } `json:"messages"`
	}
	if err := json.Unmarshal(wrapped, &got); err != nil || len(got.Messages) != 1 {
		t.Fatalf("wrapped request: %v %.200s", err, wrapped)
	}
	c := got.Messages[0].Content
	if !strings.Contains(c, "<user_input_") || !strings.Contains(c, "Riverside Community Garden") {
		t.Errorf("wrapped content: %.300s", c)
	}
	if _, err := mapWrapEncode(body); err != nil {
		t.Error(err)
	}
}

// withBaseline runs op under b and reports its time per op as a ratio to
// base's, measured in the same run over the same number of iterations.
// (testing.Benchmark cannot be used for the baseline: called inside a
// running benchmark it waits forever on the testing package's lock.)
func withBaseline(b *testing.B, metric string, bytes int, base, op func(b *testing.B)) {
	b.ReportAllocs()
	if bytes > 0 {
		b.SetBytes(int64(bytes))
	}
	b.StopTimer()
	start := time.Now()
	for range b.N {
		base(b)
	}
	baseTime := time.Since(start)
	b.ResetTimer()
	b.StartTimer()
	for range b.N {
		op(b)
	}
	b.StopTimer()
	if baseTime > 0 {
		b.ReportMetric(float64(b.Elapsed())/float64(baseTime), metric)
	}
}

func BenchmarkRequestDecodeEncode(b *testing.B) {
	body := RequestBody(false)
	b.Run("unchanged", func(b *testing.B) {
		withBaseline(b, "x-unmarshal-map", len(body), func(b *testing.B) {
			var m map[string]any
			if err := json.Unmarshal(body, &m); err != nil {
				b.Fatal(err)
			}
		}, func(b *testing.B) {
			r, err := anthropic.DecodeRequest(body, anthropic.Options{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := r.Encode(); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("wrapped", func(b *testing.B) {
		withBaseline(b, "x-map-escape-marshal", len(body), func(b *testing.B) {
			if _, err := mapWrapEncode(body); err != nil {
				b.Fatal(err)
			}
		}, func(b *testing.B) {
			if _, err := decodeWrapEncode(body); err != nil {
				b.Fatal(err)
			}
		})
	})
}

func BenchmarkWrapBlock(b *testing.B) {
	text := Prompt()
	withBaseline(b, "x-escape-concat", len(text), func(b *testing.B) {
		_ = escapeConcat(text)
	}, func(b *testing.B) {
		_ = wrapBlock(text)
	})
}

func BenchmarkSSEReemit(b *testing.B) {
	stream := standinStream(b)
	withBaseline(b, "x-line-copy", len(stream), func(b *testing.B) {
		if err := lineCopy(stream, io.Discard); err != nil {
			b.Fatal(err)
		}
	}, func(b *testing.B) {
		if _, err := reemit(stream, io.Discard); err != nil {
			b.Fatal(err)
		}
	})
}
