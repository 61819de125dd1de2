package abi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"
	"unsafe"
)

// ABI v2 is additive: the same exports and hooks as v1, with binary
// layouts instead of JSON for the request and the verdict (sdk/ABI.md,
// "ABI v2"). A module declares it by exporting ExportMarkerV2.

// VersionV2 is the version word that starts every v2 request and verdict.
const VersionV2 = 2

// ExportMarkerV2 is a function with no params and no results whose presence
// declares that the module reads v2 requests and writes v2 verdicts.
const ExportMarkerV2 = "moat_abi_v2"

// Sizes of the fixed parts of the v2 layouts, in bytes.
const (
	// RequestHeaderV2 is the request header: version, phase, text length,
	// config length and the eight context lengths, each a little-endian u32.
	RequestHeaderV2 = 48
	// VerdictHeaderV2 is the verdict header: version, action, text length,
	// reason length and finding count.
	VerdictHeaderV2 = 20
	// findingHeaderV2 is one finding's start, end and rule length.
	findingHeaderV2 = 12
)

// Action codes of a v2 verdict.
const (
	ActionCodeAllow  uint32 = 1
	ActionCodeModify uint32 = 2
	ActionCodeReject uint32 = 3
)

// Errors of the v2 decoders.
var (
	ErrBadRequest = errors.New("invalid request")
	ErrVersion    = errors.New("unsupported layout version")
)

// contextFields lists the context strings in layout order.
func contextFields(c *Context) [8]*string {
	return [8]*string{&c.Route, &c.Model, &c.Client, &c.User, &c.RequestID, &c.Kind, &c.Role, &c.Path}
}

// phaseCode maps a phase to its v2 code (the moat_phases bit).
func phaseCode(p Phase) (uint32, bool) {
	switch p {
	case PhaseInput:
		return uint32(PhaseBitInput), true
	case PhaseOutput:
		return uint32(PhaseBitOutput), true
	}
	return 0, false
}

// RequestSizeV2 returns the length of r's v2 encoding.
func RequestSizeV2(r *Request) int {
	n := RequestHeaderV2 + len(r.Text) + len(r.Config)
	for _, f := range contextFields(&r.Context) {
		n += len(*f)
	}
	return n
}

// PutRequestV2 writes r's v2 encoding into dst, which must be exactly
// RequestSizeV2(r) bytes long (the host passes the guest's buffer, so the
// request is written once, with no intermediate copy).
func PutRequestV2(dst []byte, r *Request) error {
	if len(dst) != RequestSizeV2(r) {
		return fmt.Errorf("%w: buffer of %d bytes for a %d-byte request", ErrBadRequest, len(dst), RequestSizeV2(r))
	}
	code, ok := phaseCode(r.Phase)
	if !ok {
		return fmt.Errorf("%w: unknown phase %q", ErrBadRequest, r.Phase)
	}
	le := binary.LittleEndian
	le.PutUint32(dst[0:], VersionV2)
	le.PutUint32(dst[4:], code)
	le.PutUint32(dst[8:], uint32(len(r.Text)))
	le.PutUint32(dst[12:], uint32(len(r.Config)))
	fields := contextFields(&r.Context)
	for i, f := range fields {
		le.PutUint32(dst[16+4*i:], uint32(len(*f)))
	}
	off := RequestHeaderV2
	off += copy(dst[off:], r.Text)
	off += copy(dst[off:], r.Config)
	for _, f := range fields {
		off += copy(dst[off:], *f)
	}
	return nil
}

// AppendRequestV2 appends r's v2 encoding to dst.
func AppendRequestV2(dst []byte, r *Request) ([]byte, error) {
	n := len(dst)
	dst = append(dst, make([]byte, RequestSizeV2(r))...)
	if err := PutRequestV2(dst[n:], r); err != nil {
		return dst[:n], err
	}
	return dst, nil
}

// DecodeRequestV2 parses a v2 request. The strings share one copy of b;
// Config aliases b itself, so a caller that reuses b copies Config first.
// Lengths must add up to len(b) exactly; the text, config and context need
// not be checked for UTF-8 here (the host sends valid UTF-8).
func DecodeRequestV2(b []byte) (Request, error) { return decodeRequestV2(b, false) }

// DecodeRequestV2Shared is DecodeRequestV2 without the copy: every string
// aliases b, so they are only valid while b is unchanged. The Go SDK uses
// it on its request buffer, which the next call overwrites (a handler that
// keeps a string past its return clones it); the copy it saves is most of
// an SDK call's cost.
func DecodeRequestV2Shared(b []byte) (Request, error) { return decodeRequestV2(b, true) }

func decodeRequestV2(b []byte, shared bool) (Request, error) {
	var r Request
	if len(b) < RequestHeaderV2 {
		return r, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", ErrBadRequest, len(b), RequestHeaderV2)
	}
	le := binary.LittleEndian
	if v := le.Uint32(b); v != VersionV2 {
		return r, fmt.Errorf("%w: %w %d", ErrBadRequest, ErrVersion, v)
	}
	switch le.Uint32(b[4:]) {
	case uint32(PhaseBitInput):
		r.Phase = PhaseInput
	case uint32(PhaseBitOutput):
		r.Phase = PhaseOutput
	default:
		return r, fmt.Errorf("%w: unknown phase code %d", ErrBadRequest, le.Uint32(b[4:]))
	}
	var lens [10]uint64
	total := uint64(RequestHeaderV2)
	for i := range lens {
		lens[i] = uint64(le.Uint32(b[8+4*i:]))
		total += lens[i]
	}
	if total != uint64(len(b)) {
		return r, fmt.Errorf("%w: lengths add up to %d bytes, the request has %d", ErrBadRequest, total, len(b))
	}
	var s string
	switch {
	case len(b) == RequestHeaderV2:
	case shared:
		s = unsafe.String(&b[RequestHeaderV2], len(b)-RequestHeaderV2)
	default:
		s = string(b[RequestHeaderV2:]) // one copy for every string
	}
	off := uint64(0)
	next := func(i int) string {
		v := s[off : off+lens[i]]
		off += lens[i]
		return v
	}
	r.Text = next(0)
	if lens[1] > 0 {
		r.Config = b[RequestHeaderV2+off : RequestHeaderV2+off+lens[1]]
	}
	off += lens[1]
	for i, f := range contextFields(&r.Context) {
		*f = next(2 + i)
	}
	return r, nil
}

// actionCode maps an action to its v2 code.
func actionCode(a Action) (uint32, bool) {
	switch a {
	case Allow:
		return ActionCodeAllow, true
	case Modify:
		return ActionCodeModify, true
	case Reject:
		return ActionCodeReject, true
	}
	return 0, false
}

// AppendVerdictV2 appends v's v2 encoding to dst. The text is written for
// modify only (an allow or reject never echoes it). An unknown action is an
// error.
func AppendVerdictV2(dst []byte, v *Verdict) ([]byte, error) {
	code, ok := actionCode(v.Action)
	if !ok {
		return dst, fmt.Errorf("%w: %w %q", ErrBadVerdict, ErrUnknownAction, string(v.Action))
	}
	text := ""
	if v.Action == Modify {
		text = v.Text
	}
	le := binary.LittleEndian
	dst = le.AppendUint32(dst, VersionV2)
	dst = le.AppendUint32(dst, code)
	dst = le.AppendUint32(dst, uint32(len(text)))
	dst = le.AppendUint32(dst, uint32(len(v.Reason)))
	dst = le.AppendUint32(dst, uint32(len(v.Findings)))
	dst = append(dst, text...)
	dst = append(dst, v.Reason...)
	for _, f := range v.Findings {
		dst = le.AppendUint32(dst, uint32(max(f.Start, 0)))
		dst = le.AppendUint32(dst, uint32(max(f.End, 0)))
		dst = le.AppendUint32(dst, uint32(len(f.Rule)))
		dst = append(dst, f.Rule...)
	}
	return dst, nil
}

// DecodeVerdictV2 parses and checks a v2 verdict: the version, a known
// action, text only for modify, lengths that add up to len(b) exactly, and
// valid UTF-8 in every string. Anything else is a plugin error.
func DecodeVerdictV2(b []byte) (Verdict, error) {
	var v Verdict
	if len(b) < VerdictHeaderV2 {
		return v, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", ErrBadVerdict, len(b), VerdictHeaderV2)
	}
	le := binary.LittleEndian
	if ver := le.Uint32(b); ver != VersionV2 {
		return v, fmt.Errorf("%w: %w %d", ErrBadVerdict, ErrVersion, ver)
	}
	code := le.Uint32(b[4:])
	textLen, reasonLen, count := uint64(le.Uint32(b[8:])), uint64(le.Uint32(b[12:])), uint64(le.Uint32(b[16:]))
	switch code {
	case ActionCodeAllow:
		v.Action = Allow
	case ActionCodeModify:
		v.Action = Modify
	case ActionCodeReject:
		v.Action = Reject
	default:
		return Verdict{}, fmt.Errorf("%w: %w code %d", ErrBadVerdict, ErrUnknownAction, code)
	}
	if textLen != 0 && v.Action != Modify {
		return Verdict{}, fmt.Errorf("%w: %d bytes of text with action %s", ErrBadVerdict, textLen, v.Action)
	}
	rest := b[VerdictHeaderV2:]
	take := func(n uint64, what string) (string, error) {
		if n > uint64(len(rest)) {
			return "", fmt.Errorf("%w: %s of %d bytes overruns the verdict", ErrBadVerdict, what, n)
		}
		s := rest[:n]
		rest = rest[n:]
		if !utf8.Valid(s) {
			return "", fmt.Errorf("%w: %s is not valid UTF-8", ErrBadVerdict, what)
		}
		return string(s), nil
	}
	var err error
	if v.Text, err = take(textLen, "text"); err != nil {
		return Verdict{}, err
	}
	if v.Reason, err = take(reasonLen, "reason"); err != nil {
		return Verdict{}, err
	}
	if count > uint64(len(rest))/findingHeaderV2 {
		return Verdict{}, fmt.Errorf("%w: %d findings overrun the verdict", ErrBadVerdict, count)
	}
	if count > 0 {
		v.Findings = make([]Finding, count)
	}
	for i := range v.Findings {
		if len(rest) < findingHeaderV2 {
			return Verdict{}, fmt.Errorf("%w: finding %d overruns the verdict", ErrBadVerdict, i)
		}
		f := &v.Findings[i]
		f.Start, f.End = int(le.Uint32(rest)), int(le.Uint32(rest[4:]))
		n := uint64(le.Uint32(rest[8:]))
		rest = rest[findingHeaderV2:]
		if f.Rule, err = take(n, fmt.Sprintf("rule of finding %d", i)); err != nil {
			return Verdict{}, err
		}
	}
	if len(rest) != 0 {
		return Verdict{}, fmt.Errorf("%w: %d bytes after the last finding", ErrBadVerdict, len(rest))
	}
	return v, nil
}
