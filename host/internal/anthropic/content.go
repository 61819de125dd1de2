package anthropic

import (
	"strconv"
	"strings"

	"github.com/moat-gateway/moat/sdk/abi"
)

// This file is moat's model of what the model reads in a Messages request:
// every block type of the API (as the official SDKs' request types list
// them), which of its members carry text, of what kind, and which are
// identifiers or opaque data. The input chain, the wrapper, the token
// estimate and the audit all read the segments it yields, so a new block
// type is one entry in blockSpecs, and a type with no entry is refused by
// name.
//
// Within a known block, every member is judged unless the spec names it as
// skipped: a member the API adds later is judged as the block's kind,
// never passed unseen.

// Parts of a request, for a client's judge list: whose text it is.
const (
	// PartUser is user-role content: text, tool results, documents, search
	// results, images' URLs.
	PartUser = "user"
	// PartAssistant is assistant-role content the client sends back as
	// history (or as a prefill): text, tool_use input, thinking.
	PartAssistant = "assistant"
	// PartSystem is the system prompt: the top-level system field and
	// system-role messages.
	PartSystem = "system"
	// PartTools is tool definitions, MCP server definitions and the output
	// format's schema.
	PartTools = "tools"
)

// Parts lists every part, in the order the README documents them.
var Parts = []string{PartUser, PartAssistant, PartSystem, PartTools}

// Segment says where one piece of request text is.
type Segment struct {
	// Kind is an abi.Kind* constant.
	Kind string
	// Role is the role of the message holding the text ("user",
	// "assistant", "system"), "system" for the system field, "" for tools.
	Role string
	// Part is the Part* the text belongs to.
	Part string
	// Path is the text's location in the API's error-path form.
	Path string
	// Message is the index of the message holding the text; -1 outside
	// messages.
	Message int
	// Wrap marks user data the wrapper encloses (text, tool results,
	// document bodies).
	Wrap bool
	// Fixed marks text that cannot be changed: a signed thinking block, or
	// an object member name inside tool JSON. A changed Fixed text is
	// refused.
	Fixed bool
}

// blockSpec describes one content block type.
type blockSpec struct {
	kind   string            // kind of the block's strings
	skip   []string          // members that are identifiers or opaque data
	kinds  map[string]string // members judged as another kind
	nested map[string]string // members holding content blocks, and the kind their text takes
	wrap   []string          // members the wrapper encloses in a user turn
	keys   []string          // members holding free JSON whose member names are judged too
	source bool              // the "source" member is a media source (sourceSpecs)
	fixed  bool              // signed: no change is allowed
	deep   []string          // names skipped at every depth below the block (server results)
}

// serverResultSkip are names inside server tool results that are
// identifiers, encodings or encrypted data (the model reads the decrypted
// data, which a client cannot forge).
var serverResultSkip = []string{"type", "tool_use_id", "encrypted_content", "encrypted_index", "encrypted_stdout", "media_type", "file_id", "error_code", "return_code", "retrieved_at"}

func serverResult() blockSpec {
	return blockSpec{kind: abi.KindServerToolResult, skip: []string{"type", "tool_use_id", "cache_control", "caller"},
		kinds: map[string]string{"url": abi.KindURL}, deep: serverResultSkip}
}

// blockSpecs is the request-side content model: every block type of the
// Messages API's ContentBlockParam union (anthropic-sdk-go v2.17), plus the
// beta MCP blocks.
var blockSpecs = map[string]blockSpec{
	"text": {kind: abi.KindText, skip: []string{"type", "cache_control"},
		kinds: map[string]string{"citations": abi.KindCitation}, wrap: []string{"text"}},
	"image":    {kind: abi.KindText, skip: []string{"type", "cache_control"}, source: true},
	"document": {kind: abi.KindDocument, skip: []string{"type", "cache_control", "citations"}, source: true},
	"search_result": {kind: abi.KindSearchResult, skip: []string{"type", "cache_control", "citations"},
		kinds: map[string]string{"source": abi.KindURL}, nested: map[string]string{"content": abi.KindSearchResult}},
	"thinking":          {kind: abi.KindThinking, skip: []string{"type", "signature"}, fixed: true},
	"redacted_thinking": {kind: abi.KindThinking, skip: []string{"type", "data"}},
	"tool_use":          {kind: abi.KindToolInput, skip: []string{"type", "id", "cache_control", "caller"}, keys: []string{"input"}},
	"server_tool_use":   {kind: abi.KindToolInput, skip: []string{"type", "id", "cache_control", "caller"}, keys: []string{"input"}},
	"mcp_tool_use":      {kind: abi.KindToolInput, skip: []string{"type", "id", "cache_control"}, keys: []string{"input"}},
	"tool_result": {kind: abi.KindToolResult, skip: []string{"type", "tool_use_id", "is_error", "cache_control"},
		nested: map[string]string{"content": abi.KindToolResult}, wrap: []string{"content"}},
	"mcp_tool_result": {kind: abi.KindToolResult, skip: []string{"type", "tool_use_id", "is_error", "cache_control"},
		nested: map[string]string{"content": abi.KindToolResult}, wrap: []string{"content"}},
	"web_search_tool_result":                 serverResult(),
	"web_fetch_tool_result":                  serverResult(),
	"code_execution_tool_result":             serverResult(),
	"bash_code_execution_tool_result":        serverResult(),
	"text_editor_code_execution_tool_result": serverResult(),
	"tool_search_tool_result":                serverResult(),
	"container_upload":                       {kind: abi.KindURL, skip: []string{"type", "cache_control"}},
}

// sourceSpec describes one media source type.
type sourceSpec struct {
	text   string // member holding text the model reads ("" if none)
	url    string // member holding a URL or file id
	binary string // member holding base64 data
	nested string // member holding a string or content blocks
}

var sourceSpecs = map[string]sourceSpec{
	"base64":  {binary: "data"},
	"text":    {text: "data"},
	"content": {nested: "content"},
	"url":     {url: "url"},
	"file":    {url: "file_id"},
}

// Known top-level members whose text the model reads, besides system and
// messages: judged as tool definitions with their member names.
var toolFields = []string{"tools", "output_format", "output_config", "mcp_servers"}

// toolSkip are names under toolFields that are not text for the model.
var toolSkip = []string{"cache_control", "authorization_token"}

// readTopKeys are the top-level names moat reads; a case variant of one
// is refused (the API is case-sensitive; a reader that folds case would
// see another document).
var readTopKeys = []string{"model", "max_tokens", "stream", "system", "messages", "metadata", "tools",
	"tool_choice", "output_format", "output_config", "mcp_servers", "stop_sequences", "thinking", "temperature", "top_p", "top_k", "service_tier", "container"}

// segRef is a segment and the node it came from.
type segRef struct {
	Segment
	n   *node // the string node, or the object whose member name is judged
	key int   // member index when the text is a name, else -1
}

// scanner walks a decoded request once, collecting segments, checking
// names and estimating tokens.
type scanner struct {
	relay     map[string]bool
	segs      []segRef
	textBytes int64
	media     int64 // estimated tokens of images and documents
}

func (s *scanner) add(seg Segment, n *node, key int) {
	s.segs = append(s.segs, segRef{Segment: seg, n: n, key: key})
	if key >= 0 {
		s.textBytes += int64(len(n.keys[key]))
	} else {
		s.textBytes += int64(len(n.str))
	}
}

func joinPath(path string, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func indexPath(path string, i int) string { return path + "." + strconv.Itoa(i) }

// caseVariant returns the name in known that key equals under case
// folding without being equal to it.
func caseVariant(key string, known ...[]string) (string, bool) {
	for _, list := range known {
		for _, k := range list {
			if k != key && strings.EqualFold(k, key) {
				return k, true
			}
		}
	}
	return "", false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// content walks a message's content (a string or blocks) or a nested
// content member.
func (s *scanner) content(n *node, seg Segment, wrap bool) error {
	switch n.kind {
	case '"':
		seg.Wrap = wrap
		s.add(seg, n, -1)
		return nil
	case '[':
		for i, b := range n.vals {
			if err := s.block(b, seg, indexPath(seg.Path, i)); err != nil {
				return err
			}
		}
		return nil
	}
	return InvalidRequest("%s: must be a string or an array of content blocks", seg.Path)
}

// block walks one content block. seg carries the role, part and message;
// its Kind, when not KindText, is the kind nested text takes (text inside
// a tool result is a tool result).
func (s *scanner) block(b *node, outer Segment, path string) error {
	if b.kind != '{' {
		return InvalidRequest("%s: must be an object", path)
	}
	typ, ok := b.getString("type")
	if !ok {
		if b.get("type") == nil {
			return InvalidRequest("%s.type: field required", path)
		}
		return InvalidRequest("%s.type: must be a string", path)
	}
	spec, known := blockSpecs[typ]
	if !known {
		if !s.relay[typ] {
			return InvalidRequest("%s.type: block type %q is not in moat's content model and was refused (an operator can relay it, judged as text, with server.relay_block_types)", path, typ)
		}
		spec = blockSpec{kind: abi.KindText, skip: []string{"type", "cache_control"}}
	}
	if typ == "text" {
		if t := b.get("text"); t == nil || t.kind != '"' {
			return InvalidRequest("%s.text: field required, a string", path)
		}
	}
	if outer.Role == "system" && typ != "text" {
		return InvalidRequest("%s.type: a system prompt holds only text blocks, got %q", path, typ)
	}
	names := [][]string{{"type"}, spec.skip, spec.wrap, spec.keys}
	for i, key := range b.keys {
		if k, bad := caseVariant(key, names...); bad {
			return InvalidRequest("%s: member %q differs from %q only in case; refused", path, key, k)
		}
		for k := range spec.kinds {
			if k != key && strings.EqualFold(k, key) {
				return InvalidRequest("%s: member %q differs from %q only in case; refused", path, key, k)
			}
		}
		for k := range spec.nested {
			if k != key && strings.EqualFold(k, key) {
				return InvalidRequest("%s: member %q differs from %q only in case; refused", path, key, k)
			}
		}
		if contains(spec.skip, key) {
			if key == "data" && typ == "redacted_thinking" {
				s.textBytes += int64(len(b.vals[i].raw))
			}
			continue
		}
		v := b.vals[i]
		mpath := joinPath(path, key)
		seg := Segment{Kind: spec.kind, Role: outer.Role, Part: outer.Part, Path: mpath, Message: outer.Message, Fixed: spec.fixed}
		if spec.kind == abi.KindText && outer.Kind != "" && outer.Kind != abi.KindText && outer.Kind != abi.KindSystem {
			seg.Kind = outer.Kind
		}
		if outer.Kind == abi.KindSystem {
			seg.Kind = abi.KindSystem
		}
		if k, ok := spec.kinds[key]; ok {
			seg.Kind = k
		}
		wrap := outer.Role == "user" && contains(spec.wrap, key)
		switch {
		case spec.source && key == "source":
			if err := s.source(v, seg, typ, mpath); err != nil {
				return err
			}
		case spec.nested[key] != "":
			seg.Kind = spec.nested[key]
			if err := s.content(v, seg, wrap); err != nil {
				return err
			}
		default:
			s.deep(v, seg, wrap, contains(spec.keys, key), spec.deep)
		}
	}
	return nil
}

// source walks an image's or document's source.
func (s *scanner) source(n *node, seg Segment, blockType, path string) error {
	if n.kind != '{' {
		return InvalidRequest("%s: must be an object", path)
	}
	typ, _ := n.getString("type")
	spec, ok := sourceSpecs[typ]
	if !ok {
		return InvalidRequest("%s.type: source type %q is not in moat's content model and was refused", path, typ)
	}
	known := []string{"type", "media_type", spec.text, spec.url, spec.binary, spec.nested}
	for i, key := range n.keys {
		if k, bad := caseVariant(key, known); bad {
			return InvalidRequest("%s: member %q differs from %q only in case; refused", path, key, k)
		}
		v := n.vals[i]
		mpath := joinPath(path, key)
		sub := seg
		sub.Path = mpath
		switch key {
		case "type", "media_type":
		case spec.binary:
			s.media += mediaTokens(blockType, v)
		case spec.url:
			sub.Kind = abi.KindURL
			s.media += urlTokens(blockType)
			s.deep(v, sub, false, false, nil)
		case spec.text:
			s.deep(v, sub, seg.Role == "user", false, nil)
		case spec.nested:
			if err := s.content(v, sub, seg.Role == "user"); err != nil {
				return err
			}
		default:
			s.deep(v, sub, false, false, nil)
		}
	}
	return nil
}

// deep judges every string under n; with keys, member names too. Names in
// skip are left out at every depth.
func (s *scanner) deep(n *node, seg Segment, wrap, keys bool, skip []string) {
	switch n.kind {
	case '"':
		seg.Wrap = wrap
		s.add(seg, n, -1)
	case '[':
		for i, v := range n.vals {
			sub := seg
			sub.Path = indexPath(seg.Path, i)
			s.deep(v, sub, false, keys, skip)
		}
	case '{':
		for i, k := range n.keys {
			if contains(skip, k) {
				continue
			}
			sub := seg
			sub.Path = joinPath(seg.Path, k)
			if keys {
				ks := sub
				ks.Fixed = true
				s.add(ks, n, i)
			}
			s.deep(n.vals[i], sub, false, keys, skip)
		}
	}
}

// Token estimates for media, deliberately generous: the budget reserves
// the worst case before the call, and the real usage settles it after.
const (
	// imageTokens is the most an image costs: the API scales images down
	// to about 1.15 megapixels, about 1,600 tokens.
	imageTokens = 2000
	// remoteDocumentTokens is the most a PDF the API fetches may cost: 100
	// pages (the API's limit) at about 3,000 tokens each (text and image).
	remoteDocumentTokens = 300_000
)

// mediaTokens estimates base64 data: images by their pixel size, PDFs by
// their decoded size (a third of a token per byte, at most the remote
// limit).
func mediaTokens(blockType string, data *node) int64 {
	n := int64(len(data.raw)) * 3 / 4
	if blockType == "image" {
		if t, ok := imagePixelTokens(data); ok {
			return t
		}
		return imageTokens
	}
	t := n / 3
	if t < imageTokens {
		t = imageTokens
	}
	return min(t, remoteDocumentTokens)
}

func urlTokens(blockType string) int64 {
	if blockType == "image" {
		return imageTokens
	}
	return remoteDocumentTokens
}
