package limit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/ulule/limiter/v3"
	ulmemory "github.com/ulule/limiter/v3/drivers/store/memory"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// memoryStore keeps counters in this process. Settled spend and fired alert
// marks are also written to a bbolt file, so a restart keeps the period's
// spend; reservations, in-flight slots and token windows die with the
// process, as the calls they stood for do.
//
// Writes are behind, not in, Settle: a writer goroutine commits what
// changed as soon as the previous commit ends, so settles coalesce into
// one fsync and a Settle does not wait for the disk. A crash loses at most
// the commit in progress; close flushes everything.
type memoryStore struct {
	ulule limiter.Store
	db    *bolt.DB // nil: no persistence
	log   *slog.Logger

	kick    chan struct{} // buffered 1: something is dirty
	stopped chan struct{} // closed to stop the writer
	written chan struct{} // closed when the writer has exited

	mu    sync.Mutex
	slots map[string]map[string]struct{}
	toks  map[string]expiring
	bmap  map[string]*memBucket
	marks map[string]time.Time
	users map[string]time.Time
	// dirtyB and dirtyM are the buckets and marks the writer must commit.
	dirtyB map[string]struct{}
	dirtyM map[string]struct{}
}

type expiring struct {
	n   int64
	exp time.Time
}

type memBucket struct {
	st  bucketState
	exp time.Time
	res map[string][2]int64
}

var (
	boltBudgets = []byte("budgets")
	boltMarks   = []byte("marks")
)

// newMemoryStore opens (creating) the bbolt file at path; path "" keeps
// everything in memory only.
func newMemoryStore(prefix, path string, now time.Time, log *slog.Logger) (*memoryStore, error) {
	m := &memoryStore{
		log:    log,
		dirtyB: map[string]struct{}{},
		dirtyM: map[string]struct{}{},
		ulule:  ulmemory.NewStoreWithOptions(limiter.StoreOptions{Prefix: prefix + "rl", CleanUpInterval: time.Minute}),
		slots:  map[string]map[string]struct{}{},
		toks:   map[string]expiring{},
		bmap:   map[string]*memBucket{},
		marks:  map[string]time.Time{},
		users:  map[string]time.Time{},
	}
	if path == "" {
		return m, nil
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("opening budget state %s: locked by another process (is another moat running with the same state_path?)", path)
		}
		return nil, fmt.Errorf("opening budget state %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		bb, err := tx.CreateBucketIfNotExists(boltBudgets)
		if err != nil {
			return err
		}
		mb, err := tx.CreateBucketIfNotExists(boltMarks)
		if err != nil {
			return err
		}
		var stale [][]byte
		err = bb.ForEach(func(k, v []byte) error {
			if len(v) != 24 {
				stale = append(stale, k)
				return nil
			}
			exp := time.Unix(int64(binary.BigEndian.Uint64(v[16:])), 0)
			if !now.Before(exp) {
				stale = append(stale, k)
				return nil
			}
			m.bmap[string(k)] = &memBucket{
				st:  bucketState{SpentUSD: int64(binary.BigEndian.Uint64(v)), SpentTokens: int64(binary.BigEndian.Uint64(v[8:]))},
				exp: exp,
				res: map[string][2]int64{},
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range stale {
			if err := bb.Delete(k); err != nil {
				return err
			}
		}
		stale = stale[:0]
		err = mb.ForEach(func(k, v []byte) error {
			if len(v) != 8 {
				stale = append(stale, k)
				return nil
			}
			exp := time.Unix(int64(binary.BigEndian.Uint64(v)), 0)
			if !now.Before(exp) {
				stale = append(stale, k)
				return nil
			}
			m.marks[string(k)] = exp
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range stale {
			if err := mb.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("loading budget state %s: %w", path, err)
	}
	m.db = db
	m.kick = make(chan struct{}, 1)
	m.stopped = make(chan struct{})
	m.written = make(chan struct{})
	go m.writer()
	return m, nil
}

// writer commits dirty state until stopped, then once more.
func (m *memoryStore) writer() {
	defer close(m.written)
	for {
		select {
		case <-m.kick:
			if err := m.flush(); err != nil {
				m.log.Error("limit: writing budget state failed", "err", err)
			}
		case <-m.stopped:
			if err := m.flush(); err != nil {
				m.log.Error("limit: writing budget state failed", "err", err)
			}
			return
		}
	}
}

func (m *memoryStore) markDirty() {
	if m.db == nil {
		return
	}
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// flush writes dirty buckets and marks in one transaction. Spend only grows
// within a period, so the larger of the stored and the new value is kept.
func (m *memoryStore) flush() error {
	type rec struct {
		key    string
		su, st int64
		exp    time.Time
	}
	m.mu.Lock()
	var bs []rec
	for k := range m.dirtyB {
		if b := m.bmap[k]; b != nil {
			bs = append(bs, rec{k, b.st.SpentUSD, b.st.SpentTokens, b.exp})
		}
	}
	var ms []rec
	for k := range m.dirtyM {
		if exp, ok := m.marks[k]; ok {
			ms = append(ms, rec{key: k, exp: exp})
		}
	}
	clear(m.dirtyB)
	clear(m.dirtyM)
	m.mu.Unlock()
	if len(bs)+len(ms) == 0 {
		return nil
	}
	err := m.db.Update(func(tx *bolt.Tx) error {
		bb, mb := tx.Bucket(boltBudgets), tx.Bucket(boltMarks)
		for _, r := range bs {
			var v [24]byte
			if old := bb.Get([]byte(r.key)); len(old) == 24 {
				r.su = max(r.su, int64(binary.BigEndian.Uint64(old)))
				r.st = max(r.st, int64(binary.BigEndian.Uint64(old[8:])))
			}
			binary.BigEndian.PutUint64(v[:], uint64(r.su))
			binary.BigEndian.PutUint64(v[8:], uint64(r.st))
			binary.BigEndian.PutUint64(v[16:], uint64(r.exp.Unix()))
			if err := bb.Put([]byte(r.key), v[:]); err != nil {
				return err
			}
		}
		for _, r := range ms {
			var v [8]byte
			binary.BigEndian.PutUint64(v[:], uint64(r.exp.Unix()))
			if err := mb.Put([]byte(r.key), v[:]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// Put them back so the next commit retries.
		m.mu.Lock()
		for _, r := range bs {
			m.dirtyB[r.key] = struct{}{}
		}
		for _, r := range ms {
			m.dirtyM[r.key] = struct{}{}
		}
		m.mu.Unlock()
		return fmt.Errorf("committing budget state: %w", err)
	}
	return nil
}

func (m *memoryStore) rates() limiter.Store { return m.ulule }

func (m *memoryStore) acquireSlot(_ context.Context, key, id string, max int64, _ time.Duration) (bool, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.slots[key]
	if int64(len(s)) >= max {
		return false, int64(len(s)), nil
	}
	if s == nil {
		s = map[string]struct{}{}
		m.slots[key] = s
	}
	s[id] = struct{}{}
	return true, int64(len(s)), nil
}

func (m *memoryStore) releaseSlot(_ context.Context, key, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.slots[key]; s != nil {
		delete(s, id)
		if len(s) == 0 {
			delete(m.slots, key)
		}
	}
	return nil
}

func (m *memoryStore) slotsInUse(_ context.Context, key string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return int64(len(m.slots[key])), nil
}

func (m *memoryStore) tokens(_ context.Context, key string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.toks[key].n, nil
}

func (m *memoryStore) addTokens(_ context.Context, key string, n int64, ttl time.Duration) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.toks[key]
	e.n += n
	// Window keys carry their window in the name; exp only bounds memory
	// and is measured on the wall clock like the prune that reads it.
	e.exp = time.Now().Add(ttl)
	m.toks[key] = e
	return e.n, nil
}

func (m *memoryStore) bucketLocked(b bucket) *memBucket {
	mb := m.bmap[b.key]
	if mb == nil {
		mb = &memBucket{exp: b.expireAt, res: map[string][2]int64{}}
		m.bmap[b.key] = mb
	}
	return mb
}

func fits(st bucketState, b bucket, usd, tok int64) bool {
	if b.usdLimit > 0 && st.SpentUSD+st.ReservedUSD+usd > b.usdLimit {
		return false
	}
	if b.tokLimit > 0 && st.SpentTokens+st.ReservedTokens+tok > b.tokLimit {
		return false
	}
	return true
}

func (m *memoryStore) reserve(_ context.Context, bs []bucket, id string, usd, tok int64, _ time.Duration) (int, bucketState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, b := range bs {
		mb := m.bmap[b.key]
		var st bucketState
		if mb != nil {
			st = mb.st
		}
		if !fits(st, b, usd, tok) {
			return i, st, nil
		}
	}
	for _, b := range bs {
		mb := m.bucketLocked(b)
		mb.st.ReservedUSD += usd
		mb.st.ReservedTokens += tok
		mb.res[id] = [2]int64{usd, tok}
	}
	return -1, bucketState{}, nil
}

func (m *memoryStore) settle(_ context.Context, bs []bucket, id string, usd, tok int64) ([]bucketState, error) {
	m.mu.Lock()
	out := make([]bucketState, len(bs))
	for i, b := range bs {
		mb := m.bucketLocked(b)
		if r, ok := mb.res[id]; ok {
			delete(mb.res, id)
			mb.st.ReservedUSD -= r[0]
			mb.st.ReservedTokens -= r[1]
		}
		mb.st.SpentUSD += usd
		mb.st.SpentTokens += tok
		out[i] = mb.st
	}
	if usd != 0 || tok != 0 {
		for _, b := range bs {
			m.dirtyB[b.key] = struct{}{}
		}
	}
	m.mu.Unlock()
	m.markDirty()
	return out, nil
}

func (m *memoryStore) refresh(context.Context, []leased, []leased, time.Duration) error { return nil }

func (m *memoryStore) buckets(context.Context) (map[string]bucketState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]bucketState, len(m.bmap))
	for k, b := range m.bmap {
		out[k] = b.st
	}
	return out, nil
}

func (m *memoryStore) markOnce(_ context.Context, key string, expireAt time.Time, _ time.Duration) (bool, error) {
	m.mu.Lock()
	if _, ok := m.marks[key]; ok {
		m.mu.Unlock()
		return false, nil
	}
	m.marks[key] = expireAt
	m.dirtyM[key] = struct{}{}
	m.mu.Unlock()
	m.markDirty()
	return true, nil
}

func (m *memoryStore) seen(_ context.Context, member string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.users[member] = at
	return nil
}

func (m *memoryStore) seenUsers(_ context.Context, since time.Time) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for u, at := range m.users {
		if !at.Before(since) {
			out = append(out, u)
		}
	}
	sort.Strings(out)
	return out, nil
}

// prune forgets expired budgets, marks and token windows, and users not
// seen for usersFor. Buckets with live reservations are kept.
func (m *memoryStore) prune(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, b := range m.bmap {
		if !now.Before(b.exp) && len(b.res) == 0 {
			delete(m.bmap, k)
		}
	}
	for k, exp := range m.marks {
		if !now.Before(exp) {
			delete(m.marks, k)
		}
	}
	wall := time.Now()
	for k, e := range m.toks {
		if wall.After(e.exp) {
			delete(m.toks, k)
		}
	}
	for u, at := range m.users {
		if now.Sub(at) > usersFor {
			delete(m.users, u)
		}
	}
}

func (m *memoryStore) close() error {
	if m.db == nil {
		return nil
	}
	close(m.stopped)
	<-m.written
	if err := m.flush(); err != nil { // the writer logged; report it too
		m.db.Close()
		return err
	}
	if err := m.db.Close(); err != nil {
		return fmt.Errorf("closing budget state: %w", err)
	}
	return nil
}
