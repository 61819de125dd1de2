package wasm

import (
	"context"
	"errors"
	"strings"

	"github.com/tetratelabs/wazero/sys"

	"github.com/moat-gateway/moat/host/internal/pluginerr"
	"github.com/moat-gateway/moat/sdk/abi"
)

// Errors the classification tells apart (wrapped in ErrTrap or ErrBadResult).
var (
	// errStackOverflow is raised by moat.__overflow past maxCallDepth.
	errStackOverflow = errors.New("call depth over the bound")
	// errTooLarge marks a verdict over max_output_bytes.
	errTooLarge = errors.New("result too large")
	// errAbort marks AssemblyScript's env.abort.
	errAbort = errors.New("abort")
)

// causeOf names the cause of a failed call on instance in (nil when the
// call failed before it had one). An error that carries a cause already
// (saturated, quarantined, memory limit at instantiation) keeps it.
func causeOf(err error, in *instance) pluginerr.Cause {
	if c := pluginerr.CauseOf(err); c != "" {
		return c
	}
	msg := err.Error()
	var exit *sys.ExitError
	switch {
	case errors.Is(err, ErrTimeout):
		return pluginerr.Timeout
	case errors.Is(err, context.Canceled), errors.Is(err, ErrClosed):
		return pluginerr.Canceled
	case errors.Is(err, errStackOverflow), strings.Contains(msg, "wasm error: stack overflow"):
		return pluginerr.TrapStackOverflow
	case errors.Is(err, errTooLarge):
		return pluginerr.ResultTooLarge
	case errors.Is(err, abi.ErrUnknownAction):
		return pluginerr.UnknownAction
	case errors.Is(err, abi.ErrBadVerdict):
		return pluginerr.BadVerdictJSON
	case errors.Is(err, ErrBadResult):
		return pluginerr.BadResult
	case in != nil && in.memoryLimited():
		return pluginerr.TrapMemoryLimit
	case errors.As(err, &exit):
		return pluginerr.TrapProcExit
	case strings.Contains(msg, "wasm error: unreachable"), errors.Is(err, errAbort):
		return pluginerr.TrapUnreachable
	case strings.Contains(msg, "wasm error: out of bounds memory access"), strings.Contains(msg, "is out of bounds"):
		return pluginerr.TrapOutOfBounds
	}
	return pluginerr.TrapOther
}

// memoryLimited reports whether the instance hit a memory cap: the global
// cap refused a growth, or its memory reached three quarters of memory_mb
// (a guest's allocator asks for chunks, so the growth that failed can be
// far below the cap).
func (in *instance) memoryLimited() bool {
	if in.mem == nil {
		return false
	}
	return in.mem.refused.Load() || in.mem.size.Load()*4 >= in.capBytes*3
}
