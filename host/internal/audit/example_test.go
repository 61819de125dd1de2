package audit_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/moat-gateway/moat/host/internal/audit"
)

func Example() {
	dir, _ := os.MkdirTemp("", "audit-example")
	defer os.RemoveAll(dir)
	cfg := audit.Config{Path: filepath.Join(dir, "audit.jsonl"), Content: "off"}
	l, err := audit.Open(cfg, audit.Options{Environment: "production"})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range []*audit.Record{
		{RequestID: "req-1", Client: "app", Status: 200, Decision: audit.DecisionAllow},
		{RequestID: "req-2", Client: "app", Status: 429, Decision: audit.DecisionRefuse, DecidedBy: audit.ByRateLimit},
	} {
		if err := l.Write(context.Background(), r); err != nil {
			fmt.Println("refuse with 503:", err)
			return
		}
		fmt.Println(r.RequestID, "seq", r.Seq)
	}
	l.Close()

	// Verify with the chain key (created beside the log on first Open)
	// and against the latest checkpoint.
	rep, err := audit.VerifyTrail(context.Background(), cfg, audit.TrailOptions{})
	fmt.Println("records", rep.Records, "ok", rep.OK(), "checkpoint seq", rep.Checkpoint.Seq, "err", err)

	// Cutting the last record is caught by the checkpoint.
	b, _ := os.ReadFile(cfg.Path)
	os.WriteFile(cfg.Path, b[:bytes.IndexByte(b, '\n')+1], 0o600)
	rep, err = audit.VerifyTrail(context.Background(), cfg, audit.TrailOptions{})
	fmt.Println("ok", rep.OK(), "kind", rep.Problem.Kind)
	// Output:
	// req-1 seq 1
	// req-2 seq 2
	// records 2 ok true checkpoint seq 2 err <nil>
	// ok false kind cut_tail
}
