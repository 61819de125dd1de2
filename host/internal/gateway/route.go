package gateway

import (
	"github.com/moat-gateway/moat/host/internal/fault"
)

// serveRoute serves POST /v1/routes/{name}: the caller is authenticated
// and must be allowed the route; exchange.Call.ServeRoute does the rest.
func (cl *call) serveRoute() error {
	cl.Route = cl.c.Param("name")
	if err := cl.identify(); err != nil {
		return err
	}
	rs, ok := cl.st.routes[cl.Route]
	if !ok {
		return fault.New(fault.NotFound, "route %q does not exist", cl.Route)
	}
	if !rs.clients[cl.Who.ClientID] {
		return fault.New(fault.Forbidden, "client %q may not call route %q", cl.Who.ClientID, cl.Route)
	}
	cl.Model = rs.Model
	body, err := cl.readBody()
	if err != nil {
		return err
	}
	return cl.ServeRoute(&rs.Route, body)
}
