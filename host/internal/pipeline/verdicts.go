package pipeline

import "github.com/moat-gateway/moat/sdk/abi"

// Verdicts collects the records of one request's plugin runs for its audit
// line and metrics, merged by plugin and phase: the most severe action wins
// and durations add up, so a streamed or multi-block response gives one
// verdict per plugin. The zero Verdicts is empty and ready.
type Verdicts struct {
	list []Record
}

// Add merges recs.
func (vs *Verdicts) Add(recs []Record) {
	for _, r := range recs {
		vs.add(r)
	}
}

func (vs *Verdicts) add(r Record) {
	for i := range vs.list {
		v := &vs.list[i]
		if v.Plugin != r.Plugin || v.Phase != r.Phase {
			continue
		}
		v.Duration += r.Duration
		if severity(r.Action) > severity(v.Action) {
			v.Action, v.Reason = r.Action, r.Reason
		}
		if r.Cause != "" && v.Cause == "" {
			v.Cause = r.Cause
		}
		return
	}
	vs.list = append(vs.list, r)
}

// List returns the merged records, in the order their plugins first ran.
func (vs *Verdicts) List() []Record { return vs.list }

// LastModifier names the plugin of phase whose merged verdict is the
// latest modify, or def when none modified.
func (vs *Verdicts) LastModifier(phase abi.Phase, def string) string {
	for i := len(vs.list) - 1; i >= 0; i-- {
		if v := vs.list[i]; v.Phase == phase && v.Action == abi.Modify {
			return v.Plugin
		}
	}
	return def
}

func severity(a abi.Action) int {
	switch a {
	case abi.Allow:
		return 0
	case abi.Modify:
		return 1
	case abi.Reject:
		return 3
	default: // errors and skips
		return 2
	}
}
