package gateway

import (
	"net/http"
	"strconv"
	"time"

	"github.com/moat-gateway/moat/host/internal/anthropic"
	"github.com/moat-gateway/moat/host/internal/audit"
	"github.com/moat-gateway/moat/host/internal/exchange"
	"github.com/moat-gateway/moat/host/internal/fault"
)

// This file is the one place where moat's kinds of failure become HTTP:
// each fault.Kind has one row saying the status, the Anthropic error type
// and the audit decision and decider. Components below the edge return a
// *fault.Error (or an error wrapping one); anything else is fault.Internal.

// Status 499 (nginx's "client closed request") is what the audit record
// says of a client that went away; the wire never carries it.
const statusClientGone = 499

// relayed marks a row whose status and type are the upstream's
// (fault.Error.Status and .Type).
const relayed = 0

// faultRow is how the edge answers and records one kind of failure.
type faultRow struct {
	status   int    // HTTP status; relayed: the upstream's
	typ      string // Anthropic error type; "" with relayed: the upstream's
	decision string // audit decision
	by       string // audit decider; "" = the plugin the error names
}

// faultTable maps every kind to its answer and record. TestFaultTable
// fails for a kind without a row.
var faultTable = map[fault.Kind]faultRow{
	fault.Internal:           {http.StatusInternalServerError, anthropic.TypeAPI, audit.DecisionError, audit.ByGateway},
	fault.InvalidRequest:     {http.StatusBadRequest, anthropic.TypeInvalidRequest, audit.DecisionRefuse, audit.ByGateway},
	fault.Unauthenticated:    {http.StatusUnauthorized, anthropic.TypeAuthentication, audit.DecisionRefuse, audit.ByAuth},
	fault.Forbidden:          {http.StatusForbidden, anthropic.TypePermission, audit.DecisionRefuse, audit.ByGateway},
	fault.NotFound:           {http.StatusNotFound, anthropic.TypeNotFound, audit.DecisionRefuse, audit.ByGateway},
	fault.TooLarge:           {http.StatusRequestEntityTooLarge, anthropic.TypeRequestTooLarge, audit.DecisionRefuse, audit.ByGateway},
	fault.RateLimited:        {http.StatusTooManyRequests, anthropic.TypeRateLimit, audit.DecisionRefuse, audit.ByRateLimit},
	fault.BudgetExhausted:    {http.StatusTooManyRequests, anthropic.TypeRateLimit, audit.DecisionRefuse, audit.ByBudget},
	fault.OverBudget:         {http.StatusBadRequest, anthropic.TypeInvalidRequest, audit.DecisionRefuse, audit.ByBudget},
	fault.StoreUnavailable:   {http.StatusServiceUnavailable, anthropic.TypeAPI, audit.DecisionRefuse, audit.ByRateLimit},
	fault.AuditUnavailable:   {http.StatusServiceUnavailable, anthropic.TypeAPI, audit.DecisionError, audit.ByGateway},
	fault.InputRejected:      {http.StatusBadRequest, anthropic.TypeInvalidRequest, audit.DecisionRefuse, ""},
	fault.OutputRejected:     {http.StatusBadGateway, anthropic.TypeAPI, audit.DecisionRefuse, ""},
	fault.PluginFailed:       {http.StatusBadGateway, anthropic.TypeAPI, audit.DecisionError, ""},
	fault.UpstreamFailed:     {http.StatusBadGateway, anthropic.TypeAPI, audit.DecisionError, audit.ByUpstream},
	fault.UpstreamTimeout:    {http.StatusGatewayTimeout, anthropic.TypeAPI, audit.DecisionError, audit.ByUpstream},
	fault.UpstreamOverloaded: {529, anthropic.TypeOverloaded, audit.DecisionError, audit.ByUpstream},
	fault.UpstreamError:      {relayed, "", audit.DecisionError, audit.ByUpstream},
	fault.UpstreamRefused:    {relayed, "", audit.DecisionRefuse, audit.ByGateway},
	fault.ClientGone:         {statusClientGone, anthropic.TypeAPI, audit.DecisionRefuse, audit.ByGateway},
}

// rowOf is the row of f's kind (Internal's for a kind without one, which
// TestFaultTable rules out).
func rowOf(f *fault.Error) faultRow {
	row, ok := faultTable[f.Kind]
	if !ok {
		row = faultTable[fault.Internal]
	}
	if row.status == relayed {
		row.status = f.Status
		if row.status == 0 {
			row.status = http.StatusBadGateway
		}
		row.typ = f.Type
		if !anthropic.KnownType(row.typ) {
			row.typ = anthropic.TypeForStatus(row.status)
		}
	}
	switch {
	case f.By != "":
		row.by = f.By
	case row.by == "":
		row.by = audit.ByPluginPrefix + f.Plugin
	}
	return row
}

// apiError is an error as the client gets it (exchange.APIError).
type apiError = exchange.APIError

// toAPI is the client's error for err, by its kind's row.
func toAPI(err error) *apiError {
	f := fault.From(err)
	row := rowOf(f)
	ae := &apiError{Status: row.status, Type: row.typ, Message: f.Msg, Upstream: f.Quoted}
	if len(f.Header) > 0 || f.RetryAfter > 0 {
		ae.Header = f.Header.Clone()
		if ae.Header == nil {
			ae.Header = http.Header{}
		}
		if f.RetryAfter > 0 {
			secs := int64((f.RetryAfter + time.Second - 1) / time.Second)
			ae.Header.Set("Retry-After", strconv.FormatInt(secs, 10))
		}
	}
	return ae
}

// decision is the audit decision and decider for err (allow for nil).
func decision(err error) (string, string) {
	if err == nil {
		return audit.DecisionAllow, ""
	}
	row := rowOf(fault.From(err))
	return row.decision, row.by
}
