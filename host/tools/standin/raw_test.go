package standin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moat-gateway/moat/host/tools/standin"
)

type apiError struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
	RequestID string `json:"request_id"`
}

func decodeAPIError(t *testing.T, resp *http.Response, body []byte) apiError {
	t.Helper()
	var e apiError
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body is not JSON: %v: %s", err, body)
	}
	if e.Type != "error" || e.RequestID == "" || e.RequestID != resp.Header.Get("request-id") {
		t.Errorf("error envelope %s with request-id header %q", body, resp.Header.Get("request-id"))
	}
	if resp.Header.Get("content-type") != "application/json" {
		t.Errorf("error content-type %q", resp.Header.Get("content-type"))
	}
	return e
}

const okBody = `{"model":"claude-sonnet-4-6","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`

func TestAuthAndHeaders(t *testing.T) {
	s := startServer(t, standin.Options{})
	tests := []struct {
		name    string
		headers map[string]string
		status  int
		typ     string
	}{
		{"x-api-key", nil, 200, ""},
		{"bearer", map[string]string{"x-api-key": "", "authorization": "Bearer " + testKey}, 200, ""},
		{"no key", map[string]string{"x-api-key": ""}, 401, "authentication_error"},
		{"wrong key", map[string]string{"x-api-key": "sk-ant-other"}, 401, "authentication_error"},
		{"key prefix", map[string]string{"x-api-key": testKey[:len(testKey)-1]}, 401, "authentication_error"},
		{"wrong bearer", map[string]string{"x-api-key": "", "authorization": "Bearer nope"}, 401, "authentication_error"},
		{"basic auth", map[string]string{"x-api-key": "", "authorization": "Basic " + testKey}, 401, "authentication_error"},
		{"wrong x-api-key wins over right bearer", map[string]string{"x-api-key": "bad", "authorization": "Bearer " + testKey}, 401, "authentication_error"},
		{"no version", map[string]string{"anthropic-version": ""}, 400, "invalid_request_error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := rawDo(t, s, http.MethodPost, "/v1/messages", okBody, tc.headers)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.typ != "" {
				if e := decodeAPIError(t, resp, body); e.Error.Type != tc.typ {
					t.Errorf("type %q, want %q", e.Error.Type, tc.typ)
				}
			}
		})
	}
}

func TestAnyKeyWhenNoneConfigured(t *testing.T) {
	s := standin.New(standin.Options{})
	for _, key := range []string{"anything", ""} {
		req, _ := http.NewRequest(http.MethodGet, "/v1/models", nil)
		req.Header.Set("anthropic-version", "2023-06-01")
		if key != "" {
			req.Header.Set("x-api-key", key)
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		want := 200
		if key == "" {
			want = 401
		}
		if rec.Code != want {
			t.Errorf("key %q: status %d, want %d", key, rec.Code, want)
		}
	}
}

func TestValidation(t *testing.T) {
	s := startServer(t, standin.Options{RejectUnknownModels: true, MaxBodyBytes: 4096})
	tests := []struct {
		name, path, body string
		status           int
		msg              string
	}{
		{"not json", "/v1/messages", `{"model":`, 400, "parsing the body"},
		{"array body", "/v1/messages", `[1,2]`, 400, ""},
		{"trailing data", "/v1/messages", okBody + `{}`, 400, "trailing"},
		{"no model", "/v1/messages", `{"max_tokens":1,"messages":[{"role":"user","content":"x"}]}`, 400, "model: Field required"},
		{"model not string", "/v1/messages", `{"model":5,"max_tokens":1,"messages":[{"role":"user","content":"x"}]}`, 400, "model"},
		{"unknown model", "/v1/messages", `{"model":"claude-nope","max_tokens":1,"messages":[{"role":"user","content":"x"}]}`, 404, "model: claude-nope"},
		{"alias accepted", "/v1/messages", `{"model":"claude-haiku-4-5","max_tokens":1,"messages":[{"role":"user","content":"x"}]}`, 200, ""},
		{"no max_tokens", "/v1/messages", `{"model":"claude-sonnet-4-6","messages":[{"role":"user","content":"x"}]}`, 400, "max_tokens: Field required"},
		{"max_tokens zero", "/v1/messages", `{"model":"claude-sonnet-4-6","max_tokens":0,"messages":[{"role":"user","content":"x"}]}`, 400, "greater than or equal to 1"},
		{"max_tokens float", "/v1/messages", `{"model":"claude-sonnet-4-6","max_tokens":1.5,"messages":[{"role":"user","content":"x"}]}`, 400, "max_tokens"},
		{"no messages", "/v1/messages", `{"model":"claude-sonnet-4-6","max_tokens":1}`, 400, "messages: Field required"},
		{"empty messages", "/v1/messages", `{"model":"claude-sonnet-4-6","max_tokens":1,"messages":[]}`, 400, "at least 1 item"},
		{"bad role", "/v1/messages", `{"model":"claude-sonnet-4-6","max_tokens":1,"messages":[{"role":"tool","content":"x"}]}`, 400, "messages.0.role"},
		{"no content", "/v1/messages", `{"model":"claude-sonnet-4-6","max_tokens":1,"messages":[{"role":"user"}]}`, 400, "messages.0.content: Field required"},
		{"content number", "/v1/messages", `{"model":"claude-sonnet-4-6","max_tokens":1,"messages":[{"role":"user","content":3}]}`, 400, "messages.0.content"},
		{"block without type", "/v1/messages", `{"model":"claude-sonnet-4-6","max_tokens":1,"messages":[{"role":"user","content":[{"text":"x"}]}]}`, 400, "messages.0.content: 0.type"},
		{"stream not bool", "/v1/messages", `{"model":"claude-sonnet-4-6","max_tokens":1,"stream":"yes","messages":[{"role":"user","content":"x"}]}`, 400, "stream"},
		{"bad system", "/v1/messages", `{"model":"claude-sonnet-4-6","max_tokens":1,"system":7,"messages":[{"role":"user","content":"x"}]}`, 400, "system"},
		{"too large", "/v1/messages", `{"model":"` + strings.Repeat("a", 5000) + `"}`, 413, ""},
		{"count_tokens needs no max_tokens", "/v1/messages/count_tokens", `{"model":"claude-sonnet-4-6","messages":[{"role":"user","content":"abcdefgh"}]}`, 200, ""},
		{"count_tokens no messages", "/v1/messages/count_tokens", `{"model":"claude-sonnet-4-6"}`, 400, "messages: Field required"},
		{"unknown path", "/v1/complete", okBody, 404, "Not Found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := rawDo(t, s, http.MethodPost, tc.path, tc.body, nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.status == 200 {
				return
			}
			e := decodeAPIError(t, resp, body)
			if e.Error.Type != standin.ErrorTypeForStatus(tc.status) || !strings.Contains(e.Error.Message, tc.msg) {
				t.Errorf("error %q %q, want type for %d and a message with %q", e.Error.Type, e.Error.Message, tc.status, tc.msg)
			}
		})
	}
	resp, body := rawDo(t, s, http.MethodGet, "/v1/messages", "", nil)
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/messages: %d %s", resp.StatusCode, body)
	}
}

func TestRecording(t *testing.T) {
	s := startServer(t, standin.Options{MaxRecorded: 3})
	for i := range 5 {
		body := fmt.Sprintf(`{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"n%d"}]}`, i)
		rawDo(t, s, http.MethodPost, "/v1/messages", body, map[string]string{"x-trace": fmt.Sprint(i)})
	}
	reqs := s.Requests()
	if len(reqs) != 3 || s.RequestCount() != 5 {
		t.Fatalf("%d recorded, count %d", len(reqs), s.RequestCount())
	}
	for i, r := range reqs {
		want := fmt.Sprintf(`"content":"n%d"`, i+2)
		if !bytes.Contains(r.Body, []byte(want)) || r.Header.Get("x-trace") != fmt.Sprint(i+2) || r.Time.IsZero() {
			t.Errorf("recorded[%d] = %s %v", i, r.Body, r.Header)
		}
	}
	if last := s.Last(); last.Header.Get("x-trace") != "4" {
		t.Errorf("Last = %v", last.Header)
	}
	// Unauthorized requests are recorded too.
	rawDo(t, s, http.MethodGet, "/v1/models?limit=2", "", map[string]string{"x-api-key": "bad"})
	if last := s.Last(); last.Path != "/v1/models" || last.RawQuery != "limit=2" || last.APIKey() != "bad" {
		t.Errorf("Last = %+v", last)
	}
	s.Reset()
	if len(s.Requests()) != 0 || s.RequestCount() != 0 || s.Last().Method != "" {
		t.Errorf("after Reset: %d, %d", len(s.Requests()), s.RequestCount())
	}

	off := startServer(t, standin.Options{MaxRecorded: -1})
	rawDo(t, off, http.MethodPost, "/v1/messages", okBody, nil)
	if len(off.Requests()) != 0 || off.RequestCount() != 1 {
		t.Errorf("recording disabled: %d recorded, count %d", len(off.Requests()), off.RequestCount())
	}
}

func TestConcurrentMixedRequests(t *testing.T) {
	s := startServer(t, standin.Options{MaxRecorded: 50})
	client := newSDK(t, s)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 32 {
		wg.Go(func() {
			text := fmt.Sprintf("message %d", i)
			if i%2 == 0 {
				r := runStream(context.Background(), client, userParams(text))
				if r.err != nil || textOf(r.msg) != standin.EchoPrefix+text {
					errs <- fmt.Errorf("stream %d: %v %q", i, r.err, textOf(r.msg))
				}
				return
			}
			msg, err := client.Messages.New(context.Background(), userParams(text))
			if err != nil || textOf(*msg) != standin.EchoPrefix+text {
				errs <- fmt.Errorf("message %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if s.RequestCount() != 32 || len(s.Requests()) != 32 {
		t.Errorf("count %d recorded %d", s.RequestCount(), len(s.Requests()))
	}
}

func TestDeltaDelay(t *testing.T) {
	s := startServer(t, standin.Options{DeltaSize: 1, DeltaDelay: 20 * time.Millisecond})
	s.SetReply("abcdef")
	start := time.Now()
	r := runStream(context.Background(), newSDK(t, s), userParams("x"))
	if r.err != nil || textOf(r.msg) != "abcdef" {
		t.Fatal(r.err)
	}
	if d := time.Since(start); d < 5*20*time.Millisecond {
		t.Errorf("6 deltas with 20ms between took %v", d)
	}
}

func TestMainServesUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- standin.Main(ctx, "127.0.0.1:0", pw)
		pw.Close()
	}()
	line := make([]byte, 200)
	n, err := pr.Read(line)
	if err != nil {
		t.Fatal(err)
	}
	url := strings.TrimSpace(strings.TrimPrefix(string(line[:n]), "claude stand-in listening on "))
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("printed %q", line[:n])
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/messages", strings.NewReader(okBody))
	req.Header.Set("x-api-key", "any")
	req.Header.Set("anthropic-version", "2023-06-01")
	resp, err := newHTTPClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("status %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Main: %v", err)
	}
	if err := standin.Main(context.Background(), "256.0.0.1:99999", io.Discard); err == nil {
		t.Errorf("Main on a bad address succeeded")
	}
}
