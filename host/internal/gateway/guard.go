package gateway

import (
	"github.com/moat-gateway/moat/host/internal/pipeline"
	"github.com/moat-gateway/moat/sdk/abi"
)

// runChain runs a chain and keeps its verdicts for the audit trail.
func (cl *call) runChain(chain pipeline.Chain, phase abi.Phase, text string, meta abi.Context) (string, error) {
	if len(chain) == 0 {
		return text, nil
	}
	out, recs, err := chain.Run(cl.c.Request.Context(), phase, text, meta)
	cl.Add(recs)
	return out, err
}

// Add keeps plugin records for the audit trail (merged by plugin and
// phase) and logs their failures; it is the call's streamguard.Recorder.
func (cl *call) Add(recs []pipeline.Record) {
	cl.verdicts.Add(recs)
	cl.logFailures(recs)
}

// logFailures writes one WARN line per failed plugin call, naming its
// cause; the client only sees the generic message.
func (cl *call) logFailures(recs []pipeline.Record) {
	for _, r := range recs {
		if r.Cause == "" {
			continue
		}
		cl.g.deps.Logger.Warn("plugin failed", "plugin", r.Plugin, "phase", string(r.Phase), "cause", string(r.Cause),
			"duration", r.Duration, "request_id", cl.id, "outcome", string(r.Action))
	}
}
