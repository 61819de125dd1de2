package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/moat-gateway/moat/host/internal/fault"
)

// TestTransportErrorKinds: a failed round trip is classified by kind, and
// the message keeps addresses out.
func TestTransportErrorKinds(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	refused := &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 443}, Err: syscall.ECONNREFUSED}
	cases := []struct {
		name string
		ctx  context.Context
		err  error
		want fault.Kind
	}{
		{"deadline", context.Background(), fmt.Errorf("round trip: %w", context.DeadlineExceeded), fault.UpstreamTimeout},
		{"client gone", canceled, fmt.Errorf("round trip: %w", context.Canceled), fault.ClientGone},
		{"refused", context.Background(), refused, fault.UpstreamFailed},
		{"other", context.Background(), errors.New("tls: handshake failure"), fault.UpstreamFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := transportError(tc.ctx, tc.err)
			if f.Kind != tc.want {
				t.Fatalf("kind %s, want %s", f.Kind, tc.want)
			}
			if strings.Contains(f.Msg, "10.1.2.3") {
				t.Fatalf("message %q holds the address", f.Msg)
			}
		})
	}
}
