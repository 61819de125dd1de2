package limit

import (
	"context"
	"time"

	"github.com/ulule/limiter/v3"
)

// bucket is one budget counter: a subject (global, a client or a user) over
// one period. Several budgets may share a bucket; it then carries the
// tightest limit of each kind.
type bucket struct {
	key      string        // store key without prefix
	usdLimit int64         // nano-USD; 0 = no USD limit
	tokLimit int64         // 0 = no token limit
	expireAt time.Time     // when the store may forget it (period end + grace)
	ttl      time.Duration // expireAt less now, for stores with their own clock
}

// bucketState is a bucket's counters.
type bucketState struct {
	SpentUSD, SpentTokens       int64 // settled
	ReservedUSD, ReservedTokens int64 // held by calls in flight
}

// backend is a store of counters. Every method is atomic with respect to
// every other caller of the same store, including other processes for redis.
type backend interface {
	// rates is ulule's store for request-rate counters.
	rates() limiter.Store
	// acquireSlot takes one of max in-flight slots under key for id.
	acquireSlot(ctx context.Context, key, id string, max int64, lease time.Duration) (ok bool, inUse int64, err error)
	releaseSlot(ctx context.Context, key, id string) error
	slotsInUse(ctx context.Context, key string) (int64, error)
	// tokens returns the count under a token-window key; addTokens adds to it
	// (n may be negative) and returns the new count, atomically.
	tokens(ctx context.Context, key string) (int64, error)
	addTokens(ctx context.Context, key string, n int64, ttl time.Duration) (int64, error)
	// reserve holds usd and tok in every bucket, or in none: refused is the
	// index of the first bucket they do not fit in (with its state), or -1.
	reserve(ctx context.Context, bs []bucket, id string, usd, tok int64, lease time.Duration) (refused int, st bucketState, err error)
	// settle drops id's reservation and adds the actual spend; it returns
	// the buckets' states after.
	settle(ctx context.Context, bs []bucket, id string, usd, tok int64) ([]bucketState, error)
	// refresh extends the leases of live slots and reservations.
	refresh(ctx context.Context, slots []leased, reservations []leased, lease time.Duration) error
	// buckets reads every bucket the store holds, by key, for the report.
	buckets(ctx context.Context) (map[string]bucketState, error)
	// markOnce records key, reporting whether this call was the first.
	markOnce(ctx context.Context, key string, expireAt time.Time, ttl time.Duration) (bool, error)
	// seen records a user (for the report); seenUsers lists those seen since.
	seen(ctx context.Context, member string, at time.Time) error
	seenUsers(ctx context.Context, since time.Time) ([]string, error)
	// prune forgets expired state (memory store); a no-op for redis.
	prune(now time.Time)
	close() error
}

// leased names a slot or reservation whose lease the refresher extends.
type leased struct {
	key string // slot set key, or bucket key
	id  string
}
