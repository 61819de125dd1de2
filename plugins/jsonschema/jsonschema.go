// Package jsonschema is the json-schema built-in: model output must be JSON
// valid against the configured schema (github.com/santhosh-tekuri/jsonschema,
// drafts 4 to 2020-12; the latest when the schema has no $schema).
//
// Config: schema = { ... } (the schema as a table) or a string holding the
// schema's JSON. The schema is compiled once per distinct config; it may
// not load anything by reference ($ref to a file or URL is refused). The
// output may be wrapped in a Markdown code fence (```json ... ```); the
// fence is ignored. A rejection names the failing instance location as a
// JSON pointer ("/items/0/name").
package jsonschema

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/moat-gateway/moat/plugins/internal/cfgcache"
	"github.com/moat-gateway/moat/sdk/abi"
	js "github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

type config struct {
	Schema json.RawMessage `json:"schema"`
}

var schemas cfgcache.Cache[*js.Schema]

// noLoader refuses every external reference.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("loading %q: external references are disabled", url)
}

const schemaURL = "moat:///schema.json"

func compile(req *abi.Request) (*js.Schema, error) {
	return schemas.Get(req.Config, func([]byte) (*js.Schema, error) {
		var c config
		if err := req.DecodeConfig(&c); err != nil {
			return nil, err
		}
		raw := c.Schema
		if len(raw) == 0 || string(raw) == "null" {
			return nil, errors.New(`config "schema" is required`)
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			raw = json.RawMessage(s) // the schema given as a JSON string
		}
		doc, err := js.UnmarshalJSON(strings.NewReader(string(raw)))
		if err != nil {
			return nil, fmt.Errorf("parsing schema: %w", err)
		}
		comp := js.NewCompiler()
		comp.UseLoader(noLoader{})
		if err := comp.AddResource(schemaURL, doc); err != nil {
			return nil, fmt.Errorf("adding schema: %w", err)
		}
		sch, err := comp.Compile(schemaURL)
		if err != nil {
			return nil, fmt.Errorf("compiling schema: %w", err)
		}
		return sch, nil
	})
}

// Output is the output-phase handler. Only the answer must be JSON: the
// text of a text block, or a whole text when the host names no kind. Other
// strings of a response (tool input, thinking, citations, server tool
// results, error messages, the message's own fields) are allowed here and
// left to the other plugins of the chain.
func Output(req abi.Request) abi.Verdict {
	if !answerText(req.Context) {
		return abi.AllowVerdict()
	}
	sch, err := compile(&req)
	if err != nil {
		return abi.RejectVerdict("json-schema: " + err.Error())
	}
	inst, err := js.UnmarshalJSON(strings.NewReader(Unfence(req.Text)))
	if err != nil {
		return abi.RejectVerdict("json-schema: output is not JSON: " + err.Error())
	}
	if err := sch.Validate(inst); err != nil {
		var ve *js.ValidationError
		if errors.As(err, &ve) {
			loc, msg := leaf(ve)
			return abi.RejectVerdict(fmt.Sprintf("json-schema: at %q: %s", loc, msg))
		}
		return abi.RejectVerdict("json-schema: " + err.Error())
	}
	return abi.AllowVerdict()
}

// answerText reports whether the text judged is the model's answer.
func answerText(c abi.Context) bool {
	return c.Kind == "" || (c.Kind == abi.KindText && (c.Path == "" || strings.HasSuffix(c.Path, ".text")))
}

var printer = message.NewPrinter(language.English)

// leaf returns the location and message of the first innermost cause.
func leaf(ve *js.ValidationError) (string, string) {
	for len(ve.Causes) > 0 {
		ve = ve.Causes[0]
	}
	return pointer(ve.InstanceLocation), ve.ErrorKind.LocalizedString(printer)
}

// pointer renders an instance location as a JSON pointer.
func pointer(tokens []string) string {
	if len(tokens) == 0 {
		return "/"
	}
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(t))
	}
	return b.String()
}

// Unfence strips surrounding blanks and one Markdown code fence (``` or
// ```json) around the whole text.
func Unfence(s string) string {
	t := strings.TrimSpace(s)
	if !strings.HasPrefix(t, "```") || !strings.HasSuffix(t, "```") || len(t) < 6 {
		return t
	}
	body := t[3 : len(t)-3]
	nl := strings.IndexByte(body, '\n')
	if nl < 0 {
		return strings.TrimSpace(body)
	}
	if lang := strings.TrimSpace(body[:nl]); lang != "" && !strings.EqualFold(lang, "json") {
		return t // a fence of another language: not JSON
	}
	return strings.TrimSpace(body[nl+1:])
}

// CheckConfig compiles the schema in a plugin config, so a host can refuse a
// bad schema at load instead of on the first response.
func CheckConfig(config []byte) error {
	_, err := compile(&abi.Request{Config: config})
	return err
}
