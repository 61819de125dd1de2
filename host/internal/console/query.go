package console

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/moat-gateway/moat/host/internal/audit"
)

// Audit search bounds.
const (
	defaultAuditRows = 100
	maxAuditRows     = 1000
	maxFieldLen      = 512
)

// timeLayouts are accepted for since/until, read as UTC unless they carry
// an offset (the form's datetime-local inputs send the first).
var timeLayouts = []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339Nano, "2006-01-02"}

func parseTime(s string) (time.Time, error) {
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time (examples: 2026-01-02T15:04, 2026-01-02T15:04:05Z)", s)
}

// parseAuditQuery reads the audit search form: request_id, client, user,
// decision (allow, refuse or error), since, until and limit. Empty fields
// match everything. Every problem is returned at once, joined.
func parseAuditQuery(v url.Values) (audit.Query, error) {
	q := audit.Query{Limit: defaultAuditRows}
	var probs []string
	text := func(name string) string {
		s := strings.TrimSpace(v.Get(name))
		if len(s) > maxFieldLen || !utf8.ValidString(s) {
			probs = append(probs, fmt.Sprintf("%s must be at most %d bytes of UTF-8", name, maxFieldLen))
			return ""
		}
		return s
	}
	q.RequestID, q.Client, q.User = text("request_id"), text("client"), text("user")
	switch d := text("decision"); d {
	case "", audit.DecisionAllow, audit.DecisionRefuse, audit.DecisionError:
		q.Decision = d
	default:
		probs = append(probs, fmt.Sprintf("decision must be allow, refuse or error, got %q", d))
	}
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		if s := text(f.name); s != "" {
			t, err := parseTime(s)
			if err != nil {
				probs = append(probs, f.name+": "+err.Error())
				continue
			}
			*f.dst = t
		}
	}
	if s := text("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxAuditRows {
			probs = append(probs, fmt.Sprintf("limit must be a number from 1 to %d", maxAuditRows))
		} else {
			q.Limit = n
		}
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Until.After(q.Since) {
		probs = append(probs, "until must be after since")
	}
	if len(probs) > 0 {
		return audit.Query{}, fmt.Errorf("invalid audit search: %s", strings.Join(probs, "; "))
	}
	return q, nil
}
