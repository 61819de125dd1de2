package audit

import (
	"encoding/json"
	"math"
	"strconv"
	"time"

	"github.com/moat-gateway/moat/host/internal/jsonstr"
)

// appendRecord appends rec's JSON line body (without the chain fields'
// trailing newline) to dst: the bytes encoding/json writes for a Record,
// field by field without reflection. ok is false for a value it does not
// write the way encoding/json does (a time outside years 0-9999, a cost
// that is not finite); the caller then uses encoding/json.
func appendRecord(dst []byte, rec *Record) (b []byte, ok bool) {
	if y := rec.Time.Year(); y < 0 || y > 9999 || math.IsNaN(rec.CostUSD) || math.IsInf(rec.CostUSD, 0) {
		return dst, false
	}
	b = append(dst, `{"time":"`...)
	b = rec.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","request_id":`...)
	b = appendString(b, rec.RequestID)
	b = appendOpt(b, `,"environment":`, rec.Environment)
	b = appendOpt(b, `,"client":`, rec.Client)
	b = appendOpt(b, `,"user":`, rec.User)
	b = appendOpt(b, `,"source_ip":`, rec.SourceIP)
	b = appendOpt(b, `,"endpoint":`, rec.Endpoint)
	b = appendOpt(b, `,"route":`, rec.Route)
	b = appendOpt(b, `,"model":`, rec.Model)
	b = append(b, `,"stream":`...)
	b = strconv.AppendBool(b, rec.Stream)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(rec.Status), 10)
	b = append(b, `,"decision":`...)
	b = appendString(b, rec.Decision)
	b = appendOpt(b, `,"decided_by":`, rec.DecidedBy)
	if len(rec.Plugins) > 0 {
		b = append(b, `,"plugins":[`...)
		for i := range rec.Plugins {
			p := &rec.Plugins[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"name":`...)
			b = appendString(b, p.Name)
			b = append(b, `,"phase":`...)
			b = appendString(b, p.Phase)
			b = append(b, `,"action":`...)
			b = appendString(b, p.Action)
			b = appendOpt(b, `,"reason":`, p.Reason)
			b = appendOpt(b, `,"cause":`, p.Cause)
			b = append(b, `,"duration_ns":`...)
			b = strconv.AppendInt(b, int64(p.Duration), 10)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"input_tokens":`...)
	b = strconv.AppendInt(b, rec.InputTokens, 10)
	b = append(b, `,"output_tokens":`...)
	b = strconv.AppendInt(b, rec.OutputTokens, 10)
	b = append(b, `,"cache_read_tokens":`...)
	b = strconv.AppendInt(b, rec.CacheReadTokens, 10)
	b = append(b, `,"cache_write_tokens":`...)
	b = strconv.AppendInt(b, rec.CacheWriteTokens, 10)
	b = append(b, `,"cost_usd":`...)
	b = appendFloat(b, rec.CostUSD)
	b = append(b, `,"latency_ns":`...)
	b = strconv.AppendInt(b, int64(rec.Latency), 10)
	b = append(b, `,"gateway_latency_ns":`...)
	b = strconv.AppendInt(b, int64(rec.GatewayLatency), 10)
	b = appendOpt(b, `,"upstream_request_id":`, rec.UpstreamRequestID)
	b = appendOpt(b, `,"error":`, rec.Error)
	b = appendOpt(b, `,"cause":`, rec.Cause)
	if rec.SampledOut != 0 {
		b = append(b, `,"sampled_out":`...)
		b = strconv.AppendInt(b, rec.SampledOut, 10)
	}
	b = appendOpt(b, `,"content_mode":`, rec.ContentMode)
	b = appendOpt(b, `,"input_hmac":`, rec.InputHMAC)
	b = appendOpt(b, `,"output_hmac":`, rec.OutputHMAC)
	b = appendOpt(b, `,"input_content":`, rec.InputContent)
	b = appendOpt(b, `,"output_content":`, rec.OutputContent)
	if rec.Seq != 0 {
		b = append(b, `,"seq":`...)
		b = strconv.AppendUint(b, rec.Seq, 10)
	}
	b = appendOpt(b, `,"key_id":`, rec.KeyID)
	b = appendOpt(b, `,"prev_hash":`, rec.PrevHash)
	b = appendOpt(b, `,"hash":`, rec.Hash)
	return append(b, '}'), true
}

// appendOpt writes an omitempty string member.
func appendOpt(b []byte, name, s string) []byte {
	if s == "" {
		return b
	}
	return appendString(append(b, name...), s)
}

// appendFloat writes f as encoding/json does.
func appendFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 becomes e-9, as encoding/json writes it.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendString writes s quoted as encoding/json does (HTML characters
// escaped).
func appendString(b []byte, s string) []byte { return jsonstr.Append(b, s, true) }

// marshalRecord encodes a record: appendRecord, or encoding/json for what
// appendRecord leaves to it.
func marshalRecord(rec *Record) ([]byte, error) {
	if b, ok := appendRecord(make([]byte, 0, 512+len(rec.InputContent)+len(rec.OutputContent)+len(rec.Error)), rec); ok {
		return b, nil
	}
	return json.Marshal(rec)
}
