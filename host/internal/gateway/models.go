package gateway

import (
	"encoding/json"
	"net/url"
	"strconv"

	"github.com/moat-gateway/moat/host/internal/anthropic"
	"github.com/moat-gateway/moat/host/internal/fault"
)

// Bounds of the models list, as the API has them.
const (
	modelsDefaultLimit = 20
	modelsMaxLimit     = 1000
	// modelsMaxPages bounds how many upstream pages a filtered list reads.
	modelsMaxPages = 20
)

// modelsPage is a /v1/models list page.
type modelsPage struct {
	Data    []json.RawMessage `json:"data"`
	HasMore bool              `json:"has_more"`
	FirstID *string           `json:"first_id"`
	LastID  *string           `json:"last_id"`
}

// serveFilteredModels serves GET /v1/models to a client restricted to some
// models. Filtering an upstream page would break pagination (limit=1 could
// give an empty page with has_more, and first_id/last_id would name models
// the client cannot see), so moat reads the whole upstream list, keeps the
// allowed models in the upstream's order, and pages that list itself with
// the client's limit, after_id and before_id.
// pageBounds picks the page of ids after afterID or before beforeID (at
// most one is set), at most limit long: ids[from:to], and whether more
// lie beyond it in the direction of paging.
func pageBounds(ids []string, afterID, beforeID string, limit int) (from, to int, hasMore bool, err error) {
	from, to = 0, len(ids)
	switch {
	case afterID != "":
		i := indexOf(ids, afterID)
		if i < 0 {
			return 0, 0, false, anthropic.InvalidRequest("after_id: unknown model id %s", afterID)
		}
		from = i + 1
		if to-from > limit {
			to, hasMore = from+limit, true
		}
	case beforeID != "":
		i := indexOf(ids, beforeID)
		if i < 0 {
			return 0, 0, false, anthropic.InvalidRequest("before_id: unknown model id %s", beforeID)
		}
		to = i
		from = max(0, to-limit)
		hasMore = from > 0
	default:
		if to-from > limit {
			to, hasMore = from+limit, true
		}
	}
	return from, to, hasMore, nil
}

func (cl *call) serveFilteredModels() error {
	q := cl.c.Request.URL.Query()
	limit := modelsDefaultLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > modelsMaxLimit {
			return anthropic.InvalidRequest("limit: must be an integer between 1 and %d", modelsMaxLimit)
		}
		limit = n
	}
	afterID, beforeID := q.Get("after_id"), q.Get("before_id")
	if afterID != "" && beforeID != "" {
		return anthropic.InvalidRequest("after_id and before_id cannot both be set")
	}
	all, err := cl.allModels()
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(all))
	kept := make([]json.RawMessage, 0, len(all))
	for _, m := range all {
		var head struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(m, &head) != nil || !cl.ClientPolicy().AllowsModel(head.ID) {
			continue
		}
		ids = append(ids, head.ID)
		kept = append(kept, m)
	}
	from, to, hasMore, err := pageBounds(ids, afterID, beforeID, limit)
	if err != nil {
		return err
	}
	page := modelsPage{Data: kept[from:to], HasMore: hasMore}
	if from < to {
		page.FirstID, page.LastID = &ids[from], &ids[to-1]
	}
	if page.Data == nil {
		page.Data = []json.RawMessage{}
	}
	b, err := json.Marshal(page)
	if err != nil {
		return err
	}
	if b, err = cl.ScrubBody(b); err != nil {
		return err
	}
	return cl.Respond(b)
}

// allModels reads every page of the upstream's models list.
func (cl *call) allModels() ([]json.RawMessage, error) {
	var all []json.RawMessage
	after := ""
	for range modelsMaxPages {
		q := url.Values{"limit": {strconv.Itoa(modelsMaxLimit)}}
		if after != "" {
			q.Set("after_id", after)
		}
		b, err := cl.Get("/v1/models?" + q.Encode())
		if err != nil {
			return nil, err
		}
		var p modelsPage
		if err := json.Unmarshal(b, &p); err != nil {
			return nil, fault.New(fault.UpstreamFailed, "upstream returned a malformed models list")
		}
		all = append(all, p.Data...)
		if !p.HasMore || p.LastID == nil || *p.LastID == "" {
			return all, nil
		}
		after = *p.LastID
	}
	return nil, fault.New(fault.UpstreamFailed, "upstream models list has more than %d pages", modelsMaxPages)
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}
