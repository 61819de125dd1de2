package exchange

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/moat-gateway/moat/host/internal/audit"
)

// Respond writes the audit record, then the JSON body; when the record
// cannot be written (and audit is fail-closed) the client gets a 503.
func (c *Call) Respond(body []byte) error {
	if err := c.Record(http.StatusOK, nil); err != nil {
		return AuditFailure(err)
	}
	c.resp.JSON(body)
	return nil
}

// Fail records a failed call and returns the error the client must get.
// A call refused after upstream calls used tokens (a route whose output
// failed validation, even after repair) is charged for them; releasing
// the reservation would let such calls overrun a budget.
func (c *Call) Fail(err error) *APIError {
	if c.res != nil && c.used() {
		c.Settle()
	}
	ae := c.deps.Told(err)
	if werr := c.Record(ae.Status, err); werr != nil {
		ae = c.deps.Told(AuditFailure(werr))
	}
	return c.cleanError(ae)
}

// Record writes the audit line and the metrics for the call, once. It
// returns an error when the record could not be written and audit is
// fail-closed.
func (c *Call) Record(status int, err error) error {
	if c.finished {
		return nil
	}
	c.finished = true
	rec := c.auditRecord(status, err)
	c.observe(rec)
	if status >= 500 {
		c.logFailure(rec)
	}
	if !c.Authed && c.deps.Sample != nil {
		ok, n := c.deps.Sample(c.pol.UnauthenticatedRate, time.Now())
		if !ok {
			c.deps.Metrics.AuditSampledOut()
			return nil
		}
		rec.SampledOut = n
	}
	if werr := c.deps.Audit.Write(c.background(), rec); werr != nil {
		c.deps.Logger.Error("writing audit record", "request_id", c.ID, "err", werr)
		if !c.pol.FailOpen {
			return werr
		}
	}
	return nil
}

// auditRecord is the call's audit record: who, what, the outcome, usage,
// timings, the error the client got with the cause behind a 5xx, and the
// plugins' verdicts.
func (c *Call) auditRecord(status int, err error) *audit.Record {
	dec, who := audit.DecisionAllow, ""
	if err != nil {
		dec, who = c.deps.Decide(err)
	}
	total := since(c.Start)
	rec := &audit.Record{
		RequestID:         c.ID,
		Client:            c.Who.ClientID,
		User:              c.Who.User,
		Endpoint:          c.Endpoint,
		Route:             c.Route,
		Model:             c.Model,
		Stream:            c.Stream,
		Status:            status,
		Decision:          dec,
		DecidedBy:         who,
		InputTokens:       c.usage.InputTokens,
		OutputTokens:      c.usage.OutputTokens,
		CacheReadTokens:   c.usage.CacheReadInputTokens,
		CacheWriteTokens:  c.usage.CacheCreationInputTokens,
		CostUSD:           c.cost,
		Latency:           total,
		GatewayLatency:    total - c.upstreamTime,
		UpstreamRequestID: c.upstreamID,
		Input:             c.input.String(),
		Output:            c.output.String(),
	}
	if c.IP.IsValid() {
		rec.SourceIP = c.IP.String()
	}
	if err != nil {
		told := c.deps.Told(err)
		rec.Error = told.Message
		if status >= 500 {
			rec.Cause = CauseOf(err, told)
		}
	}
	c.addPlugins(rec)
	return rec
}

// addPlugins puts the call's merged plugin verdicts in rec.
func (c *Call) addPlugins(rec *audit.Record) {
	verdicts := c.verdicts.List()
	if len(verdicts) == 0 {
		return
	}
	rec.Plugins = make([]audit.PluginVerdict, 0, len(verdicts))
	for _, v := range verdicts {
		rec.Plugins = append(rec.Plugins, audit.PluginVerdict{Name: v.Plugin, Phase: string(v.Phase), Action: string(v.Action), Reason: v.Reason, Cause: string(v.Cause), Duration: v.Duration})
	}
}

// since is time.Since, as a variable for tests.
var since = time.Since

// CauseOf is what err says beyond told, the error the client gets: ""
// when told's message is the whole story, else err's full text, which names
// each step it went through and the cause of its fault.
func CauseOf(err error, told *APIError) string {
	if msg := err.Error(); msg != told.Message {
		return msg
	}
	return ""
}

// logFailure logs a 5xx once, when its record is made (Record runs once
// per call): what the client was told, and the cause behind it, with the
// request id the client saw. Failures the upstream decided are warnings;
// moat's own are errors.
func (c *Call) logFailure(rec *audit.Record) {
	level := slog.LevelError
	if rec.DecidedBy == audit.ByUpstream {
		level = slog.LevelWarn
	}
	cause := rec.Cause
	if cause == "" {
		cause = rec.Error
	}
	c.deps.Logger.Log(c.background(), level, "request failed",
		"request_id", c.ID, "status", rec.Status, "endpoint", rec.Endpoint, "route", rec.Route,
		"client", rec.Client, "decided_by", rec.DecidedBy, "error", rec.Error, "cause", c.scrubber().String(cause))
}

// observe feeds a finished call to the metrics.
func (c *Call) observe(rec *audit.Record) {
	m := c.deps.Metrics
	if m == nil {
		return
	}
	m.Request(rec.Endpoint, rec.Route, rec.Client, rec.Status, rec.Latency, rec.GatewayLatency)
	if rec.InputTokens+rec.OutputTokens+rec.CacheReadTokens+rec.CacheWriteTokens > 0 {
		m.Usage(rec.Client, rec.Model, rec.InputTokens, rec.OutputTokens, rec.CacheReadTokens, rec.CacheWriteTokens, rec.CostUSD)
	}
	for _, v := range rec.Plugins {
		m.PluginCall(v.Name, v.Phase, v.Action, v.Duration)
		if v.Cause != "" {
			m.PluginError(v.Name, v.Phase, v.Cause)
		}
	}
	switch rec.DecidedBy {
	case audit.ByRateLimit, audit.ByBudget:
		m.LimitRefusal(rec.Client, rec.DecidedBy)
	}
}
