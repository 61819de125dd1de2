package standin

import (
	"net/http"
	"strconv"
	"time"
)

// DefaultModel is a current model id the stand-in lists and demos use.
const DefaultModel = "claude-sonnet-4-6"

// modelSpec is one entry of the stand-in's catalogue.
type modelSpec struct {
	id, name, line string
	created        string // release day; stand-in values, ordered like the real list
	maxInput       int
	maxTokens      int
}

// catalogue lists current (not deprecated in anthropic-sdk-go v2.15.0)
// models, newest first, as GET /v1/models does.
var catalogue = []modelSpec{
	{"claude-opus-5-5", "Claude Opus 5.5", "opus", "2026-09-01", 1000000, 128000},
	{"claude-sonnet-5-5", "Claude Sonnet 5.5", "sonnet", "2026-09-01", 1000000, 64000},
	{"claude-haiku-5-5", "Claude Haiku 5.5", "haiku", "2026-09-01", 200000, 64000},
	{"claude-opus-4-8", "Claude Opus 4.8", "opus", "2026-06-01", 1000000, 128000},
	{"claude-opus-4-7", "Claude Opus 4.7", "opus", "2026-04-01", 1000000, 128000},
	{"claude-sonnet-4-6", "Claude Sonnet 4.6", "sonnet", "2026-02-17", 1000000, 64000},
	{"claude-opus-4-6", "Claude Opus 4.6", "opus", "2026-02-05", 1000000, 128000},
	{"claude-haiku-4-5-20251001", "Claude Haiku 4.5", "haiku", "2025-10-01", 200000, 64000},
}

// modelAliases are accepted model names that the list does not show.
var modelAliases = []string{"claude-haiku-4-5"}

// Models returns the ids the stand-in lists, newest first.
func Models() []string {
	out := make([]string, len(catalogue))
	for i, m := range catalogue {
		out[i] = m.id
	}
	return out
}

type capability struct {
	Supported bool `json:"supported"`
}

type wireCapabilities struct {
	Batch             capability `json:"batch"`
	Citations         capability `json:"citations"`
	CodeExecution     capability `json:"code_execution"`
	ContextManagement struct {
		ClearThinking20251015 capability `json:"clear_thinking_20251015"`
		ClearToolUses20250919 capability `json:"clear_tool_uses_20250919"`
		Compact20260112       capability `json:"compact_20260112"`
		Supported             bool       `json:"supported"`
	} `json:"context_management"`
	Effort struct {
		High      capability `json:"high"`
		Low       capability `json:"low"`
		Max       capability `json:"max"`
		Medium    capability `json:"medium"`
		Supported bool       `json:"supported"`
		Xhigh     capability `json:"xhigh"`
	} `json:"effort"`
	ImageInput  capability `json:"image_input"`
	PDFInput    capability `json:"pdf_input"`
	ServerTools struct {
		CodeExecution capability `json:"code_execution"`
		Supported     bool       `json:"supported"`
		WebSearch     capability `json:"web_search"`
	} `json:"server_tools"`
	StructuredOutputs capability `json:"structured_outputs"`
	Thinking          struct {
		Supported bool `json:"supported"`
		Types     struct {
			Adaptive     capability `json:"adaptive"`
			BetweenTools capability `json:"between_tools"`
			Disabled     capability `json:"disabled"`
			Enabled      capability `json:"enabled"`
		} `json:"types"`
	} `json:"thinking"`
}

type wireModel struct {
	Type           string           `json:"type"`
	ID             string           `json:"id"`
	DisplayName    string           `json:"display_name"`
	CreatedAt      string           `json:"created_at"`
	Lifecycle      string           `json:"lifecycle"`
	Line           string           `json:"line"`
	MaxInputTokens int              `json:"max_input_tokens"`
	MaxTokens      int              `json:"max_tokens"`
	DeprecatedAt   *string          `json:"deprecated_at"`
	RetiresAt      *string          `json:"retires_at"`
	Capabilities   wireCapabilities `json:"capabilities"`
}

// modelEntry is a catalogue model with its JSON encoded once.
type modelEntry struct {
	id   string
	json []byte
}

func buildModels() ([]modelEntry, map[string]int) {
	yes := capability{Supported: true}
	var caps wireCapabilities
	caps.Batch, caps.Citations, caps.CodeExecution = yes, yes, yes
	cm := &caps.ContextManagement
	cm.ClearThinking20251015, cm.ClearToolUses20250919, cm.Compact20260112, cm.Supported = yes, yes, yes, true
	ef := &caps.Effort
	ef.High, ef.Low, ef.Max, ef.Medium, ef.Supported, ef.Xhigh = yes, yes, yes, yes, true, yes
	caps.ImageInput, caps.PDFInput, caps.StructuredOutputs = yes, yes, yes
	caps.ServerTools.CodeExecution, caps.ServerTools.Supported, caps.ServerTools.WebSearch = yes, true, yes
	th := &caps.Thinking
	th.Supported = true
	th.Types.Adaptive, th.Types.BetweenTools, th.Types.Disabled, th.Types.Enabled = yes, yes, yes, yes

	entries := make([]modelEntry, len(catalogue))
	index := make(map[string]int, len(catalogue)+len(modelAliases))
	for i, m := range catalogue {
		day, err := time.Parse(time.DateOnly, m.created)
		if err != nil {
			day = time.Unix(0, 0)
		}
		entries[i] = modelEntry{id: m.id, json: marshal(wireModel{
			Type: "model", ID: m.id, DisplayName: m.name,
			CreatedAt: day.UTC().Format(time.RFC3339), Lifecycle: "active", Line: m.line,
			MaxInputTokens: m.maxInput, MaxTokens: m.maxTokens, Capabilities: caps,
		})}
		index[m.id] = i
	}
	for _, a := range modelAliases {
		index[a] = -1
	}
	return entries, index
}

func (s *Server) handleModelGet(w http.ResponseWriter, id, reqID string) {
	i, ok := s.modelIndex[id]
	if !ok || i < 0 {
		writeError(w, reqID, http.StatusNotFound, errNotFound, "model: "+id)
		return
	}
	body := s.modelsList[i].json
	h := w.Header()
	h["Request-Id"] = []string{reqID}
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	_, _ = w.Write(body)
}

// handleModelsList serves GET /v1/models with limit, after_id and before_id.
func (s *Server) handleModelsList(w http.ResponseWriter, r *http.Request, reqID string) {
	q := r.URL.Query()
	limit := 20
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, reqID, http.StatusBadRequest, errInvalidRequest, "limit: Input should be an integer between 1 and 1000")
			return
		}
		limit = n
	}
	list := s.modelsList
	from, to := 0, len(list)
	if after := q.Get("after_id"); after != "" {
		i, ok := s.modelIndex[after]
		if !ok || i < 0 {
			writeError(w, reqID, http.StatusBadRequest, errInvalidRequest, "after_id: unknown model id "+after)
			return
		}
		from = i + 1
	}
	if before := q.Get("before_id"); before != "" {
		i, ok := s.modelIndex[before]
		if !ok || i < 0 {
			writeError(w, reqID, http.StatusBadRequest, errInvalidRequest, "before_id: unknown model id "+before)
			return
		}
		to = i
		if to-from > limit {
			from = to - limit
		}
	}
	from = min(from, to)
	hasMore := false
	if to-from > limit {
		to = from + limit
		hasMore = true
	} else if q.Get("before_id") != "" {
		hasMore = from > 0
	}
	page := list[from:to]

	body := make([]byte, 0, 1024*len(page)+128)
	body = append(body, `{"data":[`...)
	for i, m := range page {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, m.json...)
	}
	body = append(body, `],"has_more":`...)
	body = strconv.AppendBool(body, hasMore)
	body = append(body, `,"first_id":`...)
	if len(page) == 0 {
		body = append(body, `null,"last_id":null}`...)
	} else {
		body = append(body, marshal(page[0].id)...)
		body = append(body, `,"last_id":`...)
		body = append(body, marshal(page[len(page)-1].id)...)
		body = append(body, '}')
	}
	h := w.Header()
	h["Request-Id"] = []string{reqID}
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	_, _ = w.Write(body)
}
