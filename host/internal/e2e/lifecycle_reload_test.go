package e2e

import (
	"bytes"
	"html"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moat-gateway/moat/host/tools/standin"
)

const lcEscapePlugin = `
[[plugins]]
name = "html-escape"
builtin = "html-escape"
streaming = "incremental"
hold_back = 1
`

// TestHotReload changes the config under a running moat and reloads it
// through POST /admin/reload: a client added is accepted, a client removed
// is refused, a changed output chain applies to new calls, while a stream
// started before the reload finishes on the config it started with (its
// plugin, gone from the new config, keeps running until the stream ends).
// A broken config is then refused with every problem listed, and moat
// keeps serving the last good one.
func TestHotReload(t *testing.T) {
	oldKey, oldHash := lcNewKey(t)
	newKey, newHash := lcNewKey(t)
	oldBlock := "[[clients]]\nid = \"old\"\nkey_sha256 = \"" + oldHash + "\"\n"
	e := start(t, envOpts{
		client: `output = ["html-escape"]`,
		extra:  lcEscapePlugin + oldBlock,
		si:     standin.Options{DeltaDelay: 20 * time.Millisecond, DeltaSize: 8},
	})
	reply := strings.Repeat("<b>bold</b> & more ", 12)
	e.si.SetReply(reply)
	good := e.lcConfig()

	if status, _, b := e.lcCall(oldKey, nil); status != 200 {
		t.Fatalf("client \"old\" before reload: %d %s", status, b)
	}
	if status, _, _ := e.lcCall(newKey, nil); status != 401 {
		t.Fatalf("client \"new\" accepted before it exists: %d", status)
	}

	// A slow stream, started on the first config.
	streamed := make(chan []byte, 1)
	go func() {
		req, _ := http.NewRequest("POST", e.url+"/v1/messages", bytes.NewReader([]byte(`{"model":"`+model+`","max_tokens":512,"stream":true,"messages":[{"role":"user","content":"slow"}]}`)))
		for k, vs := range e.auth() {
			req.Header[k] = vs
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			streamed <- []byte("error: " + err.Error())
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		streamed <- b
	}()
	lcEventually(t, 5*time.Second, "stream opened upstream", func() bool { return e.si.OpenStreams() > 0 })

	// The new config: "old" removed, "new" added, app's output chain
	// emptied and the html-escape plugin removed altogether.
	changed := strings.Replace(good, oldBlock, "[[clients]]\nid = \"new\"\nkey_sha256 = \""+newHash+"\"\n", 1)
	changed = strings.Replace(changed, `output = ["html-escape"]`, `output = []`, 1)
	changed = strings.Replace(changed, lcEscapePlugin, "", 1)
	if changed == good || strings.Contains(changed, "html-escape") || strings.Contains(changed, oldHash) {
		t.Fatal("test bug: config edits did not apply")
	}
	lcWriteAtomic(t, e.cfgPath, changed)
	e.lcMustReload()
	if e.si.OpenStreams() == 0 {
		t.Fatal("the stream ended before the reload: make it slower")
	}

	t.Run("added client accepted", func(t *testing.T) {
		if status, _, b := e.lcCall(newKey, nil); status != 200 {
			t.Fatalf("status %d: %s", status, b)
		}
	})
	t.Run("removed client refused", func(t *testing.T) {
		status, _, b := e.lcCall(oldKey, nil)
		if status != 401 {
			t.Fatalf("status %d: %s", status, b)
		}
		if typ, _ := errorBody(t, b); typ != "authentication_error" {
			t.Fatalf("type %q", typ)
		}
	})
	t.Run("new output chain applied", func(t *testing.T) {
		status, _, b := e.lcCall(e.key, nil)
		if status != 200 || strings.Contains(string(b), "lt;") || !strings.Contains(string(b), `\u003cb\u003ebold`) && !strings.Contains(string(b), "<b>bold") {
			t.Fatalf("status %d: output not raw after the chain was emptied: %s", status, b)
		}
	})
	t.Run("in-flight stream finishes on its config", func(t *testing.T) {
		var raw []byte
		select {
		case raw = <-streamed:
		case <-time.After(20 * time.Second):
			t.Fatal("stream did not finish")
		}
		text, last := sseText(t, raw)
		if last != "message_stop" {
			t.Fatalf("stream ended with %q:\n%s", last, raw)
		}
		if text != html.EscapeString(reply) {
			t.Fatalf("stream text = %q, want the old chain's escaped %q", text, html.EscapeString(reply))
		}
	})

	t.Run("broken config refused, old one kept", func(t *testing.T) {
		broken := changed + "\n[limits]\nclient_rate = \"lots\"\n[[budgets]]\nscope = \"galaxy\"\nusd = 1\n"
		broken = strings.Replace(broken, `output = []`, "output = []\ncors_origins = [\"https://*.example.com\"]", 1)
		lcWriteAtomic(t, e.cfgPath, broken)
		status, res := e.lcReload()
		if status == http.StatusOK || res["ok"] != false {
			t.Fatalf("broken config reloaded: %d %v", status, res)
		}
		msg, _ := res["error"].(string)
		for _, want := range []string{"limits.client_rate", "budgets[0].scope", "cors_origins[0]"} {
			if !strings.Contains(msg, want) {
				t.Errorf("reload error does not list %s:\n%s", want, msg)
			}
		}
		if status, _, b := e.lcCall(newKey, nil); status != 200 {
			t.Fatalf("last good config not serving: %d %s", status, b)
		}
		if status, _, _ := e.lcCall(oldKey, nil); status != 401 {
			t.Fatalf("removed client came back: %d", status)
		}
		// Fixing the file and reloading again works.
		lcWriteAtomic(t, e.cfgPath, changed)
		e.lcMustReload()
	})
	t.Run("limits follow the reload", func(t *testing.T) {
		limited := strings.Replace(changed, `output = []`, "output = []\nrate = \"2-M\"", 1)
		lcWriteAtomic(t, e.cfgPath, limited)
		e.lcMustReload()
		codes := []int{}
		for i := 0; i < 4; i++ {
			status, _, _ := e.lcCall(e.key, nil)
			codes = append(codes, status)
		}
		// Calls made before this reload are counted too, so at most two
		// of these pass, and the last ones are refused.
		if codes[2] != 429 || codes[3] != 429 {
			t.Fatalf("statuses %v with rate = \"2-M\"", codes)
		}
		// A store change is refused: it needs a restart.
		redis := limited + "\n[limits]\nstore = \"redis\"\nredis_url = \"redis://127.0.0.1:1/0\"\n"
		lcWriteAtomic(t, e.cfgPath, redis)
		status, res := e.lcReload()
		if msg, _ := res["error"].(string); status == http.StatusOK || !strings.Contains(msg, "changing limits.store needs a restart") {
			t.Fatalf("store change: %d %v", status, res)
		}
		if status, _, _ := e.lcCall(newKey, nil); status != 200 {
			t.Fatalf("serving stopped after a refused store change: %d", status)
		}
	})
	t.Run("reload needs the admin token", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+e.admin+"/admin/reload", nil)
		req.Header.Set("Authorization", "Bearer wrong")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
}
