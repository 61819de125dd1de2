package standin_test

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/moat-gateway/moat/host/tools/standin"
)

// benchPost sends body to url+"/v1/messages" b.N times over keep-alive
// connections and drains each response.
func benchPost(b *testing.B, url, body string) {
	b.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, url+"/v1/messages", strings.NewReader(body))
			req.Header.Set("x-api-key", testKey)
			req.Header.Set("anthropic-version", "2023-06-01")
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// benchBaseline runs the same round trip against a handler that only writes
// a fixed body and returns its ns/op: what the stand-in costs is reported as
// a ratio to it, measured in the same run.
func benchBaseline(b *testing.B) float64 {
	fixed := []byte(`{"id":"msg_x","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"You said: hello"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":2,"output_tokens":4}}`)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("content-type", "application/json")
		_, _ = w.Write(fixed)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	var ns float64
	b.Run("baseline", func(b *testing.B) {
		benchPost(b, "http://"+ln.Addr().String(), benchBody(false))
		ns = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	return ns
}

func benchBody(stream bool) string {
	s := "false"
	if stream {
		s = "true"
	}
	return `{"model":"claude-sonnet-4-6","max_tokens":256,"stream":` + s + `,"messages":[{"role":"user","content":"hello"}]}`
}

func BenchmarkMessages(b *testing.B) {
	base := benchBaseline(b)
	for _, tc := range []struct {
		name   string
		stream bool
		reply  string
	}{
		{"json-echo", false, ""},
		{"sse-echo", true, ""},
		{"sse-fixed-reply", true, strings.Repeat("token ", 50)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := standin.New(standin.Options{APIKey: testKey, MaxRecorded: 1000})
			if err := s.Start("127.0.0.1:0"); err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if tc.reply != "" {
				s.SetReply(tc.reply)
			}
			benchPost(b, s.URL(), benchBody(tc.stream))
			b.StopTimer()
			if base > 0 && b.N > 0 {
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/base, "x-baseline")
			}
		})
	}
}
