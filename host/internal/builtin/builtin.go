// Package builtin is the registry of moat's built-in plugins: the config
// names, their native handlers (the same SDK source compiled into moat) and
// their embedded sandbox modules.
//
// The modules are committed, compressed, as wasm/<name>.wasm.gz and
// embedded, so `go install ./host/cmd/moat` gives the binary `make build`
// gives. scripts/build-plugins.sh (make plugins) builds each one
// reproducibly from plugins/<pkg>/wasm into wasm/<name>.wasm (git-ignored);
// make modules compresses those into the committed files; and
// TestCommittedModulesMatchSource fails when a committed module is not
// what its source builds to.
package builtin

import (
	"bytes"
	"compress/gzip"
	"embed"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/moat-gateway/moat/plugins/allowpatterns"
	"github.com/moat-gateway/moat/plugins/denypatterns"
	"github.com/moat-gateway/moat/plugins/htmlescape"
	"github.com/moat-gateway/moat/plugins/injclassifier"
	"github.com/moat-gateway/moat/plugins/injection"
	"github.com/moat-gateway/moat/plugins/jsonschema"
	"github.com/moat-gateway/moat/plugins/lengthlimit"
	"github.com/moat-gateway/moat/plugins/mdlinks"
	"github.com/moat-gateway/moat/plugins/piiredact"
	"github.com/moat-gateway/moat/plugins/promptleak"
	"github.com/moat-gateway/moat/plugins/secretredact"
	"github.com/moat-gateway/moat/plugins/stripmarkers"
	"github.com/moat-gateway/moat/plugins/unicodeclean"
	"github.com/moat-gateway/moat/sdk/abi"
)

// Handler is a native plugin hook.
type Handler = func(abi.Request) abi.Verdict

type entry struct {
	input, output Handler
}

// registry maps config names to handlers; a nil handler means the built-in
// has no hook for that phase.
var registry = map[string]entry{
	"strip-markers":        {input: stripmarkers.Input},
	"unicode-clean":        {input: unicodeclean.Input},
	"injection-heuristics": {input: injection.Input},
	"injection-classifier": {input: injclassifier.Input},
	"length-limit":         {input: lengthlimit.Input, output: lengthlimit.Output},
	"pii-redact":           {input: piiredact.Input, output: piiredact.Output},
	"secret-redact":        {input: secretredact.Input, output: secretredact.Output},
	"deny-patterns":        {input: denypatterns.Input, output: denypatterns.Output},
	"json-schema":          {output: jsonschema.Output},
	"html-escape":          {output: htmlescape.Output},
	"prompt-leak":          {output: promptleak.Output},
	"allow-patterns":       {output: allowpatterns.Output},
	"markdown-links":       {output: mdlinks.Output},
}

//go:embed wasm/*.wasm.gz
var modules embed.FS

// unpacked holds each module once decompressed (a *unpackedModule per name).
var unpacked sync.Map

type unpackedModule struct {
	once sync.Once
	code []byte
	err  error
}

// Names returns the config names of the built-ins, sorted.
func Names() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Native returns the native handlers of the built-in called name; a phase
// the built-in does not handle has a nil handler. ok is false for an unknown
// name.
func Native(name string) (input, output Handler, ok bool) {
	e, ok := registry[name]
	return e.input, e.output, ok
}

// Module returns the embedded sandbox module of the built-in called name,
// decompressed (once per process). ok is false for an unknown name or a
// module missing from the binary.
func Module(name string) ([]byte, bool) {
	if _, known := registry[name]; !known {
		return nil, false
	}
	v, _ := unpacked.LoadOrStore(name, &unpackedModule{})
	m := v.(*unpackedModule)
	m.once.Do(func() { m.code, m.err = unpack(name) })
	return m.code, m.err == nil
}

// unpack reads and decompresses the embedded module of name.
func unpack(name string) ([]byte, error) {
	gz, err := modules.ReadFile("wasm/" + name + ".wasm.gz")
	if err != nil {
		return nil, err
	}
	r, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("decompressing module %q: %w", name, err)
	}
	code, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("decompressing module %q: %w", name, err)
	}
	return code, nil
}
