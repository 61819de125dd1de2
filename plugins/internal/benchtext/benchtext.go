// Package benchtext holds realistic benign request text for the built-in
// plugins' benchmarks, so every plugin is measured on the same input.
package benchtext

import "strings"

const paragraph = `Hi! I'm working on a small inventory service for our warehouse and I'd like a second pair of eyes.
The service is written in Go 1.22 and exposes a REST API; orders arrive at roughly 40 requests per second
during peak hours (9:00-11:30 and 14:00-16:00). Last quarter we shipped 12,480 parcels, up 18% on 2023.
Here is the handler that updates stock levels:

    func (s *Store) Reserve(ctx context.Context, sku string, qty int) error {
        if qty <= 0 {
            return fmt.Errorf("reserve %s: quantity must be positive, got %d", sku, qty)
        }
        tx, err := s.db.BeginTx(ctx, nil)
        if err != nil {
            return err
        }
        defer tx.Rollback()
        return tx.Commit()
    }

Could you explain whether the deferred rollback after a successful commit is safe, and suggest how to
add retries when the database reports a serialization failure? Our team lead also asked me to summarise
the trade-offs between optimistic and pessimistic locking in a short paragraph for the design review on
Thursday, and to list three metrics we should put on the dashboard (latency p99, error rate, queue depth?).
`

// Text4K is about 4 KiB of benign prose and code.
var Text4K = func() string {
	var b strings.Builder
	for b.Len() < 4096 {
		b.WriteString(paragraph)
	}
	return b.String()[:4096]
}()
