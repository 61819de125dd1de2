package plugincli

import (
	"context"
	"fmt"
	"strings"

	"github.com/moat-gateway/moat/host/internal/builtin"
	"github.com/moat-gateway/moat/sdk/abi"
)

// resolveBuiltin finds a built-in plugin by name. runtime "native" (the
// gateway's default for built-ins) calls the handler in-process; "wasm"
// runs the embedded module in the sandbox.
func resolveBuiltin(ctx context.Context, name string, phase abi.Phase, runtime string) (judgeFunc, string, func(), error) {
	input, output, ok := builtin.Native(name)
	if !ok {
		return nil, "", nil, fmt.Errorf("%w %q: not a .wasm file nor a built-in (built-ins: %s)", errUnknownPlugin, name, strings.Join(builtin.Names(), ", "))
	}
	h := input
	if phase == abi.PhaseOutput {
		h = output
	}
	if h == nil {
		return nil, "", nil, fmt.Errorf("built-in %q has no %s hook", name, phase)
	}
	switch runtime {
	case "native":
		return nativeJudge(h), "built-in, native", func() {}, nil
	case "wasm":
		code, ok := builtin.Module(name)
		if !ok {
			return nil, "", nil, fmt.Errorf("built-in %q: this binary carries no wasm module for it (host/internal/builtin/wasm lacks its .wasm.gz: run make modules)", name)
		}
		p, closeRT, err := loadCode(ctx, name, code, nil)
		if err != nil {
			return nil, "", nil, err
		}
		return p.Call, "built-in, wasm", closeRT, nil
	}
	return nil, "", nil, fmt.Errorf("%w: --runtime must be native or wasm, got %q", errUsage, runtime)
}

// nativeJudge calls a native handler, turning a panic into a plugin error
// as the gateway does.
func nativeJudge(h builtin.Handler) judgeFunc {
	return func(_ context.Context, req *abi.Request) (v abi.Verdict, err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("handler panicked: %v", r)
			}
		}()
		v = h(*req)
		switch v.Action {
		case abi.Allow, abi.Reject, abi.Modify:
			return v, nil
		}
		return abi.Verdict{}, fmt.Errorf("%w %q", abi.ErrUnknownAction, v.Action)
	}
}
