package limit

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/ulule/limiter/v3"
	ulredis "github.com/ulule/limiter/v3/drivers/store/redis"
)

// redisStore shares every counter between moat instances. Each operation
// that reads and then writes is one Lua script, which redis runs atomically.
// Leases (in-flight slots, reservations) are timed with redis' own clock so
// the instances' clocks need not agree.
type redisStore struct {
	c      *redis.Client
	prefix string
	ulule  limiter.Store
}

// Request rates use ulule's redis store: its Increment is one Lua script
// (INCRBY, then PEXPIRE when the key is new), so concurrent callers each get
// a distinct count and exactly `limit` of them see count <= limit. The test
// TestExactAdmission checks this against a real redis-server.

// slotScript takes an in-flight slot. KEYS[1] is a sorted set of holder ids
// scored by lease end (ms); expired holders (a crashed instance's) are
// dropped first. ARGV: id, max, lease ms. Returns {taken 0|1, in use}.
var slotScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local n = redis.call('ZCARD', KEYS[1])
if n >= tonumber(ARGV[2]) then
  return {0, n}
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[3]))
return {1, n + 1}
`)

// countScript counts live slots.
var countScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
`)

// reserveScript holds an amount in every bucket or in none. KEYS come in
// pairs: the bucket hash (su, st = settled nano-USD and tokens; ru, rt =
// reserved; r:<id> = "usd tok" of one reservation) and the sorted set of
// reservation ids scored by lease end. Expired reservations (a crashed
// instance's) are returned to the bucket first. ARGV: id, usd, tok, lease
// ms, then per bucket usd limit, token limit, time to live ms.
// Returns {0} or {index, su, st, ru, rt} of the first bucket it does not fit.
// Amounts are passed to HINCRBY as the caller's decimal strings; Lua's
// doubles only compare them, exact below 2^53 nano-USD (about $9M).
var reserveScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id, usd, tok, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local n = #KEYS / 2
for i = 1, n do
  local h, z = KEYS[2*i-1], KEYS[2*i]
  local dead = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  for _, rid in ipairs(dead) do
    local a = redis.call('HGET', h, 'r:' .. rid)
    if a then
      local ru, rt = string.match(a, '^(%d+) (%d+)$')
      redis.call('HINCRBY', h, 'ru', '-' .. ru)
      redis.call('HINCRBY', h, 'rt', '-' .. rt)
      redis.call('HDEL', h, 'r:' .. rid)
    end
  end
  if #dead > 0 then
    redis.call('ZREMRANGEBYSCORE', z, '-inf', now)
  end
end
for i = 1, n do
  local v = redis.call('HMGET', KEYS[2*i-1], 'su', 'st', 'ru', 'rt')
  local su, st, ru, rt = tonumber(v[1] or 0), tonumber(v[2] or 0), tonumber(v[3] or 0), tonumber(v[4] or 0)
  local lu, lt = tonumber(ARGV[4 + 3*(i-1) + 1]), tonumber(ARGV[4 + 3*(i-1) + 2])
  if (lu > 0 and su + ru + usd > lu) or (lt > 0 and st + rt + tok > lt) then
    return {i, su, st, ru, rt}
  end
end
for i = 1, n do
  local h, z = KEYS[2*i-1], KEYS[2*i]
  local exp = ARGV[4 + 3*(i-1) + 3]
  redis.call('HINCRBY', h, 'ru', ARGV[2])
  redis.call('HINCRBY', h, 'rt', ARGV[3])
  redis.call('HSET', h, 'r:' .. id, ARGV[2] .. ' ' .. ARGV[3])
  redis.call('ZADD', z, now + lease, id)
  redis.call('PEXPIRE', h, exp)
  redis.call('PEXPIRE', z, exp)
end
return {0}
`)

// settleScript drops reservation ARGV[1] (if its lease has not run out) and
// adds ARGV[2] nano-USD and ARGV[3] tokens of spend. KEYS as for reserve;
// ARGV[3+i] is bucket i's time to live ms. Returns su, st, ru, rt per bucket.
var settleScript = redis.NewScript(`
local id, usd, tok = ARGV[1], ARGV[2], ARGV[3]
local n = #KEYS / 2
local out = {}
for i = 1, n do
  local h, z = KEYS[2*i-1], KEYS[2*i]
  if redis.call('ZREM', z, id) == 1 then
    local a = redis.call('HGET', h, 'r:' .. id)
    if a then
      local ru, rt = string.match(a, '^(%d+) (%d+)$')
      redis.call('HINCRBY', h, 'ru', '-' .. ru)
      redis.call('HINCRBY', h, 'rt', '-' .. rt)
      redis.call('HDEL', h, 'r:' .. id)
    end
  end
  redis.call('HINCRBY', h, 'su', usd)
  redis.call('HINCRBY', h, 'st', tok)
  redis.call('PEXPIRE', h, ARGV[3 + i])
  redis.call('PEXPIRE', z, ARGV[3 + i])
  local v = redis.call('HMGET', h, 'su', 'st', 'ru', 'rt')
  out[#out+1] = tonumber(v[1] or 0)
  out[#out+1] = tonumber(v[2] or 0)
  out[#out+1] = tonumber(v[3] or 0)
  out[#out+1] = tonumber(v[4] or 0)
end
return out
`)

// refreshScript extends the leases of the ids given in ARGV (ms lease first)
// in the sorted sets KEYS, only where they are still held, and keeps each
// set alive at least two leases (a slot set lives only that long).
var refreshScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
for i = 1, #KEYS do
  if redis.call('ZADD', KEYS[i], 'XX', 'GT', 'CH', now + lease, ARGV[i+1]) == 1 then
    local ttl = redis.call('PTTL', KEYS[i])
    if ttl >= 0 and ttl < 2 * lease then
      redis.call('PEXPIRE', KEYS[i], 2 * lease)
    end
  end
end
return #KEYS
`)

// redisOptions parses url and fills timeouts short enough that a dead
// server fails a request quickly instead of hanging it.
func redisOptions(url string) (*redis.Options, error) {
	o, err := redis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = time.Second
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = time.Second
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = time.Second
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = 1
	}
	// go-redis retries a failed dial 5 times, 100ms apart, per attempt:
	// against a dead server that is seconds per call.
	if o.DialerRetries == 0 {
		o.DialerRetries = 2
	}
	if o.DialerRetryTimeout == 0 {
		o.DialerRetryTimeout = 50 * time.Millisecond
	}
	return o, nil
}

func newRedisStore(ctx context.Context, url, prefix string) (*redisStore, error) {
	o, err := redisOptions(url)
	if err != nil {
		return nil, fmt.Errorf("parsing redis url: %v", redactURLError(err, url))
	}
	c := redis.NewClient(o)
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := c.Ping(pctx).Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("connecting to redis at %s: %w", o.Addr, err)
	}
	st, err := ulredis.NewStoreWithOptions(c, limiter.StoreOptions{Prefix: prefix + "rl"})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("loading rate-limit scripts into redis at %s: %w", o.Addr, err)
	}
	return &redisStore{c: c, prefix: prefix, ulule: st}, nil
}

// redactURLError keeps a password in the URL out of the error.
func redactURLError(err error, url string) string {
	msg := err.Error()
	if i := strings.Index(url, "@"); i > 0 {
		msg = strings.ReplaceAll(msg, url[:i], "redis://***")
	}
	return msg
}

func (r *redisStore) rates() limiter.Store { return r.ulule }

func (r *redisStore) acquireSlot(ctx context.Context, key, id string, max int64, lease time.Duration) (bool, int64, error) {
	v, err := slotScript.Run(ctx, r.c, []string{r.prefix + key}, id, max, lease.Milliseconds()).Int64Slice()
	if err != nil {
		return false, 0, err
	}
	if len(v) != 2 {
		return false, 0, fmt.Errorf("slot script returned %d values", len(v))
	}
	return v[0] == 1, v[1], nil
}

func (r *redisStore) releaseSlot(ctx context.Context, key, id string) error {
	return r.c.ZRem(ctx, r.prefix+key, id).Err()
}

func (r *redisStore) slotsInUse(ctx context.Context, key string) (int64, error) {
	return countScript.Run(ctx, r.c, []string{r.prefix + key}).Int64()
}

func (r *redisStore) tokens(ctx context.Context, key string) (int64, error) {
	n, err := r.c.Get(ctx, r.prefix+key).Int64()
	if err == redis.Nil {
		return 0, nil
	}
	return n, err
}

func (r *redisStore) addTokens(ctx context.Context, key string, n int64, ttl time.Duration) (int64, error) {
	p := r.c.TxPipeline()
	total := p.IncrBy(ctx, r.prefix+key, n)
	p.PExpire(ctx, r.prefix+key, ttl)
	if _, err := p.Exec(ctx); err != nil {
		return 0, err
	}
	return total.Val(), nil
}

func (r *redisStore) bucketKeys(bs []bucket) []string {
	keys := make([]string, 0, 2*len(bs))
	for _, b := range bs {
		keys = append(keys, r.prefix+b.key, r.prefix+b.key+":r")
	}
	return keys
}

func (r *redisStore) reserve(ctx context.Context, bs []bucket, id string, usd, tok int64, lease time.Duration) (int, bucketState, error) {
	args := []any{id, usd, tok, lease.Milliseconds()}
	for _, b := range bs {
		args = append(args, b.usdLimit, b.tokLimit, max(b.ttl.Milliseconds(), 1000))
	}
	v, err := reserveScript.Run(ctx, r.c, r.bucketKeys(bs), args...).Int64Slice()
	if err != nil {
		return 0, bucketState{}, err
	}
	if len(v) == 1 && v[0] == 0 {
		return -1, bucketState{}, nil
	}
	if len(v) != 5 || v[0] < 1 || int(v[0]) > len(bs) {
		return 0, bucketState{}, fmt.Errorf("reserve script returned %v", v)
	}
	return int(v[0]) - 1, bucketState{SpentUSD: v[1], SpentTokens: v[2], ReservedUSD: v[3], ReservedTokens: v[4]}, nil
}

func (r *redisStore) settle(ctx context.Context, bs []bucket, id string, usd, tok int64) ([]bucketState, error) {
	args := []any{id, usd, tok}
	for _, b := range bs {
		args = append(args, max(b.ttl.Milliseconds(), 1000))
	}
	v, err := settleScript.Run(ctx, r.c, r.bucketKeys(bs), args...).Int64Slice()
	if err != nil {
		return nil, err
	}
	if len(v) != 4*len(bs) {
		return nil, fmt.Errorf("settle script returned %d values for %d buckets", len(v), len(bs))
	}
	out := make([]bucketState, len(bs))
	for i := range out {
		out[i] = bucketState{SpentUSD: v[4*i], SpentTokens: v[4*i+1], ReservedUSD: v[4*i+2], ReservedTokens: v[4*i+3]}
	}
	return out, nil
}

func (r *redisStore) refresh(ctx context.Context, slots, reservations []leased, lease time.Duration) error {
	if len(slots)+len(reservations) == 0 {
		return nil
	}
	keys := make([]string, 0, len(slots)+len(reservations))
	args := []any{lease.Milliseconds()}
	for _, s := range slots {
		keys = append(keys, r.prefix+s.key)
		args = append(args, s.id)
	}
	for _, s := range reservations {
		keys = append(keys, r.prefix+s.key+":r")
		args = append(args, s.id)
	}
	return refreshScript.Run(ctx, r.c, keys, args...).Err()
}

func (r *redisStore) buckets(ctx context.Context) (map[string]bucketState, error) {
	out := map[string]bucketState{}
	var keys []string
	iter := r.c.Scan(ctx, 0, r.prefix+"b:*", 500).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		if strings.HasSuffix(k, ":r") {
			continue
		}
		keys = append(keys, k)
	}
	if err := iter.Err(); err != nil {
		return nil, err
	}
	p := r.c.Pipeline()
	cmds := make([]*redis.SliceCmd, len(keys))
	for i, k := range keys {
		cmds[i] = p.HMGet(ctx, k, "su", "st", "ru", "rt")
	}
	if len(keys) > 0 {
		if _, err := p.Exec(ctx); err != nil {
			return nil, err
		}
	}
	for i, k := range keys {
		v := cmds[i].Val()
		num := func(j int) int64 {
			if j >= len(v) || v[j] == nil {
				return 0
			}
			s, _ := v[j].(string)
			n, _ := strconv.ParseInt(s, 10, 64)
			return n
		}
		out[strings.TrimPrefix(k, r.prefix)] = bucketState{SpentUSD: num(0), SpentTokens: num(1), ReservedUSD: num(2), ReservedTokens: num(3)}
	}
	return out, nil
}

func (r *redisStore) markOnce(ctx context.Context, key string, _ time.Time, ttl time.Duration) (bool, error) {
	ok, err := r.c.SetNX(ctx, r.prefix+key, 1, max(ttl, time.Second)).Result()
	return ok, err
}

const seenKey = "seen"

func (r *redisStore) seen(ctx context.Context, member string, at time.Time) error {
	return r.c.ZAdd(ctx, r.prefix+seenKey, redis.Z{Score: float64(at.Unix()), Member: member}).Err()
}

func (r *redisStore) seenUsers(ctx context.Context, since time.Time) ([]string, error) {
	k := r.prefix + seenKey
	if err := r.c.ZRemRangeByScore(ctx, k, "-inf", "("+strconv.FormatInt(since.Add(-usersFor).Unix(), 10)).Err(); err != nil {
		return nil, err
	}
	//lint:ignore SA1019 ZRANGEBYSCORE also works on Redis before 6.2, which lacks ZRANGE ... BYSCORE.
	return r.c.ZRangeByScore(ctx, k, &redis.ZRangeBy{Min: strconv.FormatInt(since.Unix(), 10), Max: "+inf"}).Result()
}

// prune trims the seen-users set; everything else expires in redis.
func (r *redisStore) prune(now time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r.c.ZRemRangeByScore(ctx, r.prefix+seenKey, "-inf", "("+strconv.FormatInt(now.Add(-usersFor).Unix(), 10))
}

func (r *redisStore) close() error { return r.c.Close() }
