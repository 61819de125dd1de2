package standin_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"

	"github.com/moat-gateway/moat/host/tools/standin"
)

// streamResult is what a client saw of one streamed request.
type streamResult struct {
	types []string
	msg   anthropic.Message
	err   error
}

func runStream(ctx context.Context, client anthropic.Client, params anthropic.MessageNewParams) streamResult {
	var r streamResult
	stream := client.Messages.NewStreaming(ctx, params)
	defer stream.Close()
	for stream.Next() {
		ev := stream.Current()
		r.types = append(r.types, ev.Type)
		if err := r.msg.Accumulate(ev); err != nil {
			r.err = err
			return r
		}
	}
	r.err = stream.Err()
	return r
}

func textOf(m anthropic.Message) string {
	if len(m.Content) == 0 {
		return ""
	}
	return m.Content[0].Text
}

func isConnBroken(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

func TestFaultsStreaming(t *testing.T) {
	const reply = "alpha beta gamma delta epsilon zeta eta theta iota kappa"
	tests := []struct {
		name  string
		fault standin.Fault
		check func(t *testing.T, r streamResult)
	}{
		{"reset", standin.Fault{Kind: standin.FaultReset, AfterEvents: 4}, func(t *testing.T, r streamResult) {
			if !errors.Is(r.err, syscall.ECONNRESET) {
				t.Errorf("error %v, want connection reset", r.err)
			}
			if textOf(r.msg) != "alpha beta gamma " {
				t.Errorf("text before the reset %q", textOf(r.msg))
			}
		}},
		{"truncated", standin.Fault{Kind: standin.FaultTruncatedSSE, AfterEvents: 5}, func(t *testing.T, r streamResult) {
			if r.err != nil {
				t.Errorf("error %v, want a clean end", r.err)
			}
			if len(r.types) == 0 || r.types[len(r.types)-1] == "message_stop" || textOf(r.msg) != "alpha beta gamma delta epsilon zeta " {
				t.Errorf("events %v text %q", r.types, textOf(r.msg))
			}
		}},
		{"bad json", standin.Fault{Kind: standin.FaultMalformedJSON}, func(t *testing.T, r streamResult) {
			var syn *json.SyntaxError
			if r.err == nil || (!errors.As(r.err, &syn) && !strings.Contains(r.err.Error(), "JSON")) {
				t.Errorf("error %v, want a JSON error", r.err)
			}
		}},
		{"bad sse", standin.Fault{Kind: standin.FaultMalformedSSE, AfterEvents: 3}, func(t *testing.T, r streamResult) {
			if r.err == nil {
				t.Errorf("no error on garbage SSE")
			}
			if textOf(r.msg) != "" {
				t.Errorf("text %q", textOf(r.msg))
			}
		}},
		{"stream error", standin.Fault{Kind: standin.FaultStreamError}, func(t *testing.T, r streamResult) {
			var apiErr *anthropic.Error
			if !errors.As(r.err, &apiErr) || apiErr.Type() != "overloaded_error" {
				t.Errorf("error %v, want an overloaded_error event", r.err)
			}
		}},
		{"slow", standin.Fault{Kind: standin.FaultSlowFirstByte, Delay: 150 * time.Millisecond}, func(t *testing.T, r streamResult) {
			if r.err != nil || textOf(r.msg) != reply {
				t.Errorf("slow stream: %v %q", r.err, textOf(r.msg))
			}
		}},
		{"huge", standin.Fault{Kind: standin.FaultHuge, Size: 1 << 20}, func(t *testing.T, r streamResult) {
			if r.err != nil || len(textOf(r.msg)) != 1<<20 || r.msg.Usage.OutputTokens != 1<<18 {
				t.Errorf("huge: %v, %d bytes, %d tokens", r.err, len(textOf(r.msg)), r.msg.Usage.OutputTokens)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, standin.Options{})
			s.SetReply(reply)
			tc.fault.Count = 1
			mustFault(t, s, tc.fault)
			client := newSDK(t, s)
			start := time.Now()
			tc.check(t, runStream(context.Background(), client, userParams("go")))
			if tc.fault.Delay > 0 && time.Since(start) < tc.fault.Delay {
				t.Errorf("answered after %v, before the %v delay", time.Since(start), tc.fault.Delay)
			}
			// Count 1: the next request is healthy and gets the same reply.
			r := runStream(context.Background(), client, userParams("again"))
			if r.err != nil || textOf(r.msg) != reply {
				t.Errorf("request after the fault: %v %q", r.err, textOf(r.msg))
			}
			if err := s.WaitStreamsClosed(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestFaultsNonStreaming(t *testing.T) {
	tests := []struct {
		name  string
		fault standin.Fault
		check func(t *testing.T, msg *anthropic.Message, err error)
	}{
		{"reset", standin.Fault{Kind: standin.FaultReset}, func(t *testing.T, _ *anthropic.Message, err error) {
			var apiErr *anthropic.Error
			if err == nil || errors.As(err, &apiErr) || !isConnBroken(err) {
				t.Errorf("error %v, want a broken connection", err)
			}
		}},
		{"bad json", standin.Fault{Kind: standin.FaultMalformedJSON}, func(t *testing.T, _ *anthropic.Message, err error) {
			if err == nil {
				t.Errorf("no error on a broken JSON body")
			}
		}},
		{"truncated", standin.Fault{Kind: standin.FaultTruncatedSSE}, func(t *testing.T, _ *anthropic.Message, err error) {
			if !isConnBroken(err) {
				t.Errorf("error %v, want unexpected EOF", err)
			}
		}},
		{"stream error becomes 529", standin.Fault{Kind: standin.FaultStreamError}, func(t *testing.T, _ *anthropic.Message, err error) {
			var apiErr *anthropic.Error
			if !errors.As(err, &apiErr) || apiErr.StatusCode != 529 {
				t.Errorf("error %v, want 529", err)
			}
		}},
		{"huge", standin.Fault{Kind: standin.FaultHuge, Size: 3 << 20}, func(t *testing.T, msg *anthropic.Message, err error) {
			if err != nil || len(textOf(*msg)) != 3<<20 {
				t.Errorf("huge: %v", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, standin.Options{})
			tc.fault.Count = 1
			mustFault(t, s, tc.fault)
			client := newSDK(t, s)
			msg, err := client.Messages.New(context.Background(), userParams("go"))
			tc.check(t, msg, err)
			if _, err := client.Messages.New(context.Background(), userParams("again")); err != nil {
				t.Errorf("request after the fault: %v", err)
			}
		})
	}
}

func TestFaultCountAndMarkerPrecedence(t *testing.T) {
	s := startServer(t, standin.Options{})
	client := newSDK(t, s)
	mustFault(t, s, standin.Fault{Kind: standin.FaultServerError, Count: 2})

	// A marker wins and does not use up the SetFault budget.
	_, err := client.Messages.New(context.Background(), userParams("MOAT_FAULT:rate_limit=3"))
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || apiErr.Response.Header.Get("retry-after") != "3" {
		t.Fatalf("marker: %v", err)
	}
	var statuses []int
	for range 3 {
		_, err := client.Messages.New(context.Background(), userParams("x"))
		if errors.As(err, &apiErr) {
			statuses = append(statuses, apiErr.StatusCode)
		} else if err == nil {
			statuses = append(statuses, 200)
		} else {
			t.Fatal(err)
		}
	}
	if want := []int{500, 500, 200}; !equalInts(statuses, want) {
		t.Errorf("statuses %v, want %v", statuses, want)
	}

	mustFault(t, s, standin.Fault{Kind: standin.FaultOverloaded}) // Count 0: until cleared
	for range 3 {
		if _, err := client.Messages.New(context.Background(), userParams("x")); !errors.As(err, &apiErr) || apiErr.StatusCode != 529 {
			t.Fatalf("forever fault: %v", err)
		}
	}
	// count_tokens and models are never faulted.
	if _, err := client.Messages.CountTokens(context.Background(), anthropic.MessageCountTokensParams{Model: "m", Messages: userParams("x").Messages}); err != nil {
		t.Errorf("count_tokens faulted: %v", err)
	}
	s.ClearFault()
	if _, err := client.Messages.New(context.Background(), userParams("x")); err != nil {
		t.Errorf("after ClearFault: %v", err)
	}
	if err := s.SetFault(standin.Fault{Kind: "bogus"}); err == nil {
		t.Errorf("SetFault accepted an unknown kind")
	}
	if err := s.SetFault(standin.Fault{Kind: standin.FaultError, Status: 200}); err == nil {
		t.Errorf("SetFault accepted a success status")
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestFaultMarkerSoak(t *testing.T) {
	// Markers reach the stand-in through whatever forwards the user text.
	s := startServer(t, standin.Options{})
	client := newSDK(t, s)
	r := runStream(context.Background(), client, userParams("please MOAT_FAULT:reset=3 now"))
	if !errors.Is(r.err, syscall.ECONNRESET) {
		t.Errorf("reset marker: %v", r.err)
	}
	start := time.Now()
	msg, err := client.Messages.New(context.Background(), userParams("MOAT_FAULT:slow=120ms"))
	if err != nil || time.Since(start) < 120*time.Millisecond || !strings.HasPrefix(textOf(*msg), standin.EchoPrefix) {
		t.Errorf("slow marker: %v after %v", err, time.Since(start))
	}
	_, err = client.Messages.New(context.Background(), userParams("MOAT_FAULT:error=503"))
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 503 || apiErr.Type() != "api_error" {
		t.Errorf("error marker: %v", err)
	}
	_, err = client.Messages.New(context.Background(), userParams("MOAT_FAULT:slow=forever"))
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || !strings.Contains(apiErr.Message, "slow") {
		t.Errorf("bad marker argument: %v", err)
	}
}

func TestEndlessStreamStopsWhenClientLeaves(t *testing.T) {
	for _, streaming := range []bool{true, false} {
		name := "sse"
		if !streaming {
			name = "json"
		}
		t.Run(name, func(t *testing.T) {
			s := startServer(t, standin.Options{})
			mustFault(t, s, standin.Fault{Kind: standin.FaultEndless, Delay: time.Millisecond})
			client := newSDK(t, s)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if streaming {
				stream := client.Messages.NewStreaming(ctx, userParams("tell me everything"))
				deltas := 0
				for stream.Next() {
					if stream.Current().Type == "content_block_delta" {
						deltas++
					}
					if deltas == 50 {
						break
					}
				}
				if deltas != 50 {
					t.Fatalf("only %d deltas: %v", deltas, stream.Err())
				}
				if s.OpenStreams() != 1 {
					t.Errorf("OpenStreams = %d during the stream", s.OpenStreams())
				}
				cancel()
				stream.Close()
			} else {
				// The SDK reads a JSON body to the end, so read it raw.
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL()+"/v1/messages",
					strings.NewReader(`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}]}`))
				req.Header.Set("x-api-key", testKey)
				req.Header.Set("anthropic-version", "2023-06-01")
				resp, err := newHTTPClient(t).Do(req)
				if err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 64<<10)
				if _, err := io.ReadAtLeast(resp.Body, buf, len(buf)); err != nil {
					t.Fatalf("reading the endless body: %v", err)
				}
				if !strings.HasPrefix(string(buf), `{"id":"msg_`) {
					t.Errorf("body starts %q", buf[:40])
				}
				cancel()
				resp.Body.Close()
			}
			wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer wcancel()
			if err := s.WaitIdle(wctx); err != nil {
				t.Fatalf("handler still running after the client left: %v (in flight %d)", err, s.InFlight())
			}
			if err := s.WaitStreamsClosed(wctx); err != nil || s.OpenStreams() != 0 {
				t.Fatalf("streams open: %d %v", s.OpenStreams(), err)
			}
		})
	}
}

func TestCloseEndsSlowAndEndlessHandlers(t *testing.T) {
	s := standin.New(standin.Options{})
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	client := newSDK(t, s)
	var wg sync.WaitGroup
	for _, text := range []string{"MOAT_FAULT:slow=1h", "MOAT_FAULT:endless"} {
		wg.Go(func() {
			p := userParams(text)
			_ = runStream(context.Background(), client, p)
		})
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.InFlight() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if s.InFlight() != 2 {
		t.Fatalf("in flight %d", s.InFlight())
	}
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("Close took %v", time.Since(start))
	}
	wg.Wait()
	if s.InFlight() != 0 || s.OpenStreams() != 0 {
		t.Errorf("after Close: in flight %d, streams %d", s.InFlight(), s.OpenStreams())
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := s.Start("127.0.0.1:0"); err == nil {
		t.Errorf("Start after Close succeeded")
	}
}
