package console_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/moat-gateway/moat/host/internal/console"
)

// The console is mounted under console.Prefix on the admin listener's mux;
// every page needs a session started by POSTing the admin token to the
// login form.
func ExampleNew() {
	mux := http.NewServeMux()
	mux.Handle(console.Prefix, console.New(console.Options{Token: "admin-token"}).Handler())
	srv := httptest.NewServer(mux)
	defer srv.Close()

	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(srv.URL + "/console/audit")
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("Location"))
	fmt.Println(resp.Header.Get("Content-Security-Policy") == console.ContentSecurityPolicy)
	// Output:
	// 303 /console/login
	// true
}
