package sdk

import (
	"bytes"
	"encoding/binary"

	"github.com/moat-gateway/moat/sdk/abi"
)

// DispatchV2 runs h on an ABI v2 request exactly as the wasm exports do:
// it appends the v2 verdict to out[:0] and returns it, or returns an empty
// slice for a plain allow (the ABI's 0). A nil h, or a malformed request,
// gives a verdict the host refuses as a plugin error. A panic in h
// propagates.
func DispatchV2(h Handler, request, out []byte) []byte {
	var last []byte
	return dispatchV2(h, request, out, &last)
}

// dispatchV2 is DispatchV2 with the last config seen, so a repeated config
// reaches the handler as the same slice (see Config).
func dispatchV2(h Handler, request, out []byte, last *[]byte) []byte {
	req, err := abi.DecodeRequestV2Shared(request)
	if err != nil {
		return failV2(out, "sdk: decoding request: "+err.Error())
	}
	if len(req.Config) > 0 {
		// Config aliases the request buffer, which the next call reuses.
		if !bytes.Equal(req.Config, *last) {
			*last = bytes.Clone(req.Config)
		}
		req.Config = *last
	}
	if h == nil {
		return failV2(out, "no handler for phase "+string(req.Phase))
	}
	v := h(req)
	if v.Action == abi.Allow && v.Reason == "" && len(v.Findings) == 0 {
		return out[:0]
	}
	b, err := abi.AppendVerdictV2(out[:0], &v)
	if err != nil {
		return failV2(out, "sdk: "+err.Error())
	}
	return b
}

// failV2 writes a v2 verdict with action code 0: unknown to the host, so
// the call fails closed as a plugin error. The reason says why.
func failV2(out []byte, reason string) []byte {
	le := binary.LittleEndian
	out = le.AppendUint32(out[:0], abi.VersionV2)
	out = le.AppendUint32(out, 0)
	out = le.AppendUint32(out, 0)
	out = le.AppendUint32(out, uint32(len(reason)))
	out = le.AppendUint32(out, 0)
	return append(out, reason...)
}
