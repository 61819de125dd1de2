package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"runtime/debug"

	"github.com/gin-gonic/gin"

	"github.com/moat-gateway/moat/host/internal/anthropic"
	"github.com/moat-gateway/moat/host/internal/exchange"
	"github.com/moat-gateway/moat/host/internal/fault"
)

// readBody reads the request body up to the configured cap.
func (cl *call) readBody() ([]byte, error) {
	max := cl.st.Config.Server.MaxBodyBytes
	r := http.MaxBytesReader(cl.c.Writer, cl.c.Request.Body, max)
	b, err := exchange.ReadAll(r, cl.c.Request.ContentLength, max)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fault.New(fault.TooLarge, "request body exceeds the %d-byte limit", max)
		}
		return nil, anthropic.InvalidRequest("reading request body: %s", "connection error")
	}
	return b, nil
}

// handle returns the Gin handler for one endpoint: a call is begun,
// served, and on error recorded and answered in Anthropic's shape.
func (g *Gateway) handle(endpoint string, serve func(*call) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		cl := g.begin(c, endpoint)
		defer cl.end()
		defer cl.recoverPanic()
		if err := serve(cl); err != nil {
			cl.fail(err)
		}
	}
}

// recoverPanic, deferred in every handler, turns a panic into the call's
// failure: a 500 "internal error" to the client (unless a response was
// already under way), the panic in the audit record and the log, and its
// stack in the log.
func (cl *call) recoverPanic() {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}
	cl.g.deps.Logger.Error("panic serving request", "request_id", cl.ID, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	cl.fail(fmt.Errorf("serving %s: panic: %v", cl.Endpoint, v))
}

// identify authenticates the caller (see authenticate for the lockout)
// and checks the betas it asks for.
func (cl *call) identify() error {
	if err := cl.authenticate(); err != nil {
		return err
	}
	return cl.checkBetas()
}

// serveMessages serves POST /v1/messages (exchange.Call.Messages).
func (cl *call) serveMessages() error {
	if err := cl.identify(); err != nil {
		return err
	}
	body, err := cl.readBody()
	if err != nil {
		return err
	}
	return cl.Messages(body)
}

// serveCountTokens serves POST /v1/messages/count_tokens
// (exchange.Call.CountTokens).
func (cl *call) serveCountTokens() error {
	if err := cl.identify(); err != nil {
		return err
	}
	body, err := cl.readBody()
	if err != nil {
		return err
	}
	return cl.CountTokens(body)
}

// modelsPath builds the upstream path of a models call from the parsed
// (decoded) model id and query, re-encoding both: an id holding "/", "?",
// "#" or "%" (sent encoded) stays one path segment upstream instead of
// changing the path or starting a query, and "." and ".." (which an
// upstream could resolve as path steps) are refused as no model.
func modelsPath(id, rawQuery string) (string, error) {
	p := "/v1/models"
	if id != "" {
		if id == "." || id == ".." {
			return "", fault.New(fault.NotFound, "model: %s", id)
		}
		p += "/" + url.PathEscape(id)
	}
	if rawQuery != "" {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return "", anthropic.InvalidRequest("query string: %s", "malformed")
		}
		p += "?" + q.Encode()
	}
	return p, nil
}

// serveModels serves GET /v1/models and /v1/models/{id}, filtered to the
// client's allowed models.
func (cl *call) serveModels() error {
	if err := cl.identify(); err != nil {
		return err
	}
	path, err := modelsPath(cl.c.Param("id"), cl.c.Request.URL.RawQuery)
	if err != nil {
		return err
	}
	if id := cl.c.Param("id"); id != "" && !cl.ClientPolicy().AllowsModel(id) {
		return fault.New(fault.NotFound, "model: %s", id)
	}
	if cl.c.Param("id") == "" && len(cl.ClientPolicy().Models) > 0 {
		return cl.serveFilteredModels()
	}
	b, err := cl.Get(path)
	if err != nil {
		return err
	}
	if b, err = cl.ScrubBody(b); err != nil {
		return err
	}
	return cl.Respond(b)
}
