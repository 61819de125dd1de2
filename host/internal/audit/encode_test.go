package audit

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"

	gojson "github.com/goccy/go-json"
)

var encodeCases = []Record{
	{},
	{Time: time.Date(2026, 12, 7, 3, 4, 5, 600, time.UTC), RequestID: "req_1", Environment: "prod", Client: "c", User: "u",
		SourceIP: "127.0.0.1", Endpoint: "/v1/messages", Route: "r", Model: "m", Stream: true, Status: 200, Decision: DecisionAllow,
		DecidedBy: "plugin:x", Plugins: []PluginVerdict{{Name: "a", Phase: "input", Action: "allow", Duration: 5}, {Name: "b", Phase: "output", Action: "reject", Reason: "r <b>", Cause: "timeout", Duration: -1}},
		InputTokens: 1, OutputTokens: -2, CacheReadTokens: 3, CacheWriteTokens: 4, CostUSD: 0.0123, Latency: time.Second, GatewayLatency: 7,
		UpstreamRequestID: "up", Error: "e", Cause: "c", SampledOut: 9, ContentMode: "hmac", InputHMAC: "ih", OutputHMAC: "oh",
		InputContent: "in", OutputContent: "out", Seq: 42, KeyID: "k", PrevHash: "p", Hash: "h"},
	{Time: time.Date(1, 1, 1, 0, 0, 0, 0, time.FixedZone("x", 3600)), RequestID: "quote \" backslash \\ ctrl \x00\x01\x1f\b\f\n\r\t html <>& del \x7f"},
	{RequestID: "bad utf8 \xff\xc3 ok é 世界 🙂 \u2028\u2029 \ufeff"},
	{CostUSD: 1e-7}, {CostUSD: 1e21}, {CostUSD: -1e-9}, {CostUSD: 123456789.5}, {CostUSD: 1e20}, {CostUSD: math.SmallestNonzeroFloat64},
	{CostUSD: math.NaN()}, {CostUSD: math.Inf(1)},
	{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, {Time: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)},
	{Plugins: []PluginVerdict{}},
}

// TestMarshalRecordMatchesEncodingJSON: the hand-written encoder writes
// exactly encoding/json's bytes (what goccy/go-json wrote before).
func TestMarshalRecordMatchesEncodingJSON(t *testing.T) {
	for i := range encodeCases {
		checkSameEncoding(t, &encodeCases[i])
	}
}

func checkSameEncoding(t *testing.T, rec *Record) {
	t.Helper()
	want, werr := json.Marshal(rec)
	got, gerr := marshalRecord(rec)
	if (gerr == nil) != (werr == nil) {
		t.Fatalf("marshalRecord error %v, encoding/json's %v", gerr, werr)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("marshalRecord:\n got %s\nwant %s", got, want)
	}
}

// FuzzMarshalRecord compares the encoders on any strings and numbers.
func FuzzMarshalRecord(f *testing.F) {
	f.Add("req", "plugin", "reason <x>", "\xff\u2028", int64(3), 0.5, int64(1700000000))
	f.Add("", "", "", "", int64(0), 1e-7, int64(0))
	f.Fuzz(func(t *testing.T, id, name, reason, content string, n int64, cost float64, sec int64) {
		rec := &Record{Time: time.Unix(sec%(300000*365*86400), n).UTC(), RequestID: id, Client: name, Error: reason, InputContent: content,
			InputTokens: n, CostUSD: cost, Latency: time.Duration(n), Seq: uint64(n),
			Plugins: []PluginVerdict{{Name: name, Reason: reason, Duration: time.Duration(n)}}}
		checkSameEncoding(t, rec)
	})
}

// BenchmarkMarshalRecord encodes a typical record with marshalRecord and,
// in the same run, with goccy/go-json (what marshalRecord used before
// issue 18) and encoding/json.
func BenchmarkMarshalRecord(b *testing.B) {
	rec := rec("bench")
	rec.Time = time.Now().UTC()
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := marshalRecord(rec); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("goccy_before", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := gojson.Marshal(rec); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(rec); err != nil {
				b.Fatal(err)
			}
		}
	})
}
