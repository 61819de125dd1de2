package audit

import (
	"errors"

	"github.com/moat-gateway/moat/host/internal/fault"
)

// MsgUnavailable is what a caller refused because the trail cannot take
// its record is told.
const MsgUnavailable = "audit log unavailable; request refused (audit.fail_open = false)"

// unavailable is a failure of Write or Healthy as a fault.AuditUnavailable
// (the request must be refused unless audit.fail_open is set); errors.Is
// still finds ErrWrite or ErrClosed in it.
func unavailable(err error) error {
	if err == nil {
		return nil
	}
	return fault.Wrap(fault.AuditUnavailable, err, MsgUnavailable)
}

// Sentinel errors.
var (
	// ErrClosed is returned by Write and Healthy after Close.
	ErrClosed = errors.New("audit log closed")
	// ErrWrite wraps every failure to write or sync a record; the caller
	// must refuse the request unless audit.fail_open is set.
	ErrWrite = errors.New("audit record not written")
	// ErrNoHMACKey means content mode "hmac" has no key to use.
	ErrNoHMACKey = errors.New("audit hmac key missing")
	// ErrChainBroken is returned by Verify when the chain does not hold.
	ErrChainBroken = errors.New("audit chain broken")
	// ErrNoChainKey means the key of the record chain is missing.
	ErrNoChainKey = errors.New("audit chain key missing")
	// ErrCheckpoint means the latest checkpoint does not match the trail
	// (records were cut while moat was down, or a file was replaced), so
	// Open refuses to continue the chain over the gap.
	ErrCheckpoint = errors.New("audit checkpoint does not match the trail")
	// ErrBadCheckpoint means a stored checkpoint is malformed, was MAC'd
	// with another key, or was altered.
	ErrBadCheckpoint = errors.New("audit checkpoint not valid")
	// ErrCorruptTail means the existing audit file does not end with a
	// valid record, so the chain cannot be continued safely.
	ErrCorruptTail = errors.New("audit file does not end with a valid record")
)
