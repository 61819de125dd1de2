package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Options are the run-time collaborators of a Logger. The zero value is
// usable: no redactor (DefaultRedact in "redacted" mode), no extra secrets,
// time.Now and a discarding slog.Logger.
type Options struct {
	// Environment is written into every record.
	Environment string
	// Redact masks PII and secrets in "redacted" mode; it must be safe for
	// concurrent use.
	Redact func(string) string
	// Secrets returns the strings that must never be written (the upstream
	// key, client keys); called once per Write, from concurrent goroutines.
	Secrets func() []string
	// Now is the clock.
	Now func() time.Time
	// Logger receives operational messages (rotation, sync failures).
	Logger *slog.Logger
	// Checkpoints are stores for checkpoints besides the checkpoint file
	// (audit.checkpoint_path), such as a RedisStore.
	Checkpoints []CheckpointStore
	// Observer, when set, is told about failed records and checkpoints
	// (the metrics page).
	Observer Observer
}

// Observer receives a Logger's events; it must be safe for concurrent use.
type Observer interface {
	// AuditWriteFailure is called once per record Write could not write.
	AuditWriteFailure()
	// AuditCheckpoint is called after each checkpoint is saved (in the
	// checkpoint file; other stores may have failed).
	AuditCheckpoint(seq uint64, head string, at time.Time)
	// AuditCheckpointFailure is called when a store could not save one.
	AuditCheckpointFailure()
}

// Logger appends records to the audit trail. Its zero value is not usable;
// a nil *Logger (returned by Open for a disabled config) accepts every
// Write as a no-op and is always healthy.
type Logger struct {
	path     string
	maxBytes int64
	every    bool
	interval time.Duration
	env      string
	now      func() time.Time
	log      *slog.Logger
	content  *contentPolicy

	reqs    chan *writeReq
	token   chan struct{} // the writer token: whoever holds it owns the file
	quit    chan struct{}
	stopped chan struct{}
	close   sync.Once
	health  atomic.Pointer[error]

	key        *ChainKey
	logAbs     string
	stores     []CheckpointStore
	cpEvery    time.Duration
	observer   Observer
	durable    atomic.Pointer[head]       // last durable record, set by the writer
	checkpoint atomic.Pointer[Checkpoint] // last checkpoint saved
	cpStopped  chan struct{}
	cpErr      error
	stats      struct{ records, syncs, syncNanos atomic.Uint64 }
	// syncHook replaces File.Sync in tests (slow or failing disks).
	syncHook func(*os.File) error

	// Owned by the holder of token (a writing request, or run for ticks
	// and close).
	f        *os.File
	fileInfo os.FileInfo
	size     int64
	seq      uint64
	prev     string
	dirty    bool
	buf      []byte
	batch    []*writeReq
	closed   error
	shut     bool // the file is closed: queued records get ErrClosed
	// syncFailed: the last sync failed (fsync sets it), so records may
	// be only in the page cache: unhealthy until a sync succeeds.
	syncFailed bool
	sealer     *sealer
}

// head is the end of the chain: the last record's seq and hash.
type head struct {
	seq  uint64
	hash string
}

// writeReq is one record waiting for the holder of the writer token.
type writeReq struct {
	body  []byte
	state atomic.Int32 // reqWaiting, reqTaken, reqAbandoned
	done  chan error
	seq   uint64
	prev  string
	hash  string
}

const (
	reqWaiting int32 = iota
	reqTaken
	reqAbandoned
)

// Config is the audit trail's configuration: [audit] of config.toml,
// compiled by host/internal/plan, which fills the defaults. The zero
// values below are what a Config built by hand gets.
type Config struct {
	// Path of the audit file; required unless Disabled.
	Path string
	// Disabled turns the trail off: Open returns a nil *Logger.
	Disabled bool
	// Content is ContentOff ("" is the same), ContentHMAC,
	// ContentRedacted or ContentFull.
	Content string
	// HMACKeyEnv or HMACKeyFile supplies the key of content "hmac".
	HMACKeyEnv, HMACKeyFile string
	// FSyncInterval is 0 to sync every record before it is acknowledged
	// (group commit), or how often records are synced.
	FSyncInterval time.Duration
	// MaxBytes is the size at which the file is rotated; 0 is 100 MiB.
	MaxBytes int64
	// ChainKeyEnv or ChainKeyFile supplies the chain key; both empty is
	// the file .moat-audit-chain.key next to the audit file.
	ChainKeyEnv, ChainKeyFile string
	// CheckpointPath is the checkpoint file; "" is .moat-audit-checkpoint
	// next to the audit file.
	CheckpointPath string
	// CheckpointInterval is how often a checkpoint is written while
	// records arrive; 0 is one second.
	CheckpointInterval time.Duration
}

// maxBatch bounds how many waiting records one write and fsync cover.
const maxBatch = 512

// Open opens (creating if needed) the audit file of cfg and continues its
// chain. It returns a nil *Logger and no error when cfg.Disabled is set.
// It fails when content is "hmac" and no usable key is found, when no chain
// key is found (a missing chain key file is created), when the existing
// file does not end with a valid record sealed with this key, and when the
// latest checkpoint does not match the trail (records cut while moat was
// down; see ErrCheckpoint). It then writes a checkpoint of the head it
// continues from.
func Open(cfg Config, opts Options) (*Logger, error) {
	if cfg.Disabled {
		return nil, nil
	}
	if cfg.Path == "" {
		return nil, errors.New("opening audit log: no path")
	}
	content, err := newContentPolicy(cfg, opts)
	if err != nil {
		return nil, fmt.Errorf("opening audit log: %w", err)
	}
	key, created, err := LoadChainKey(cfg, true)
	if err != nil {
		return nil, fmt.Errorf("opening audit log: %w", err)
	}
	abs, err := filepath.Abs(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("opening audit log: %w", err)
	}
	l := &Logger{
		key:       key,
		logAbs:    abs,
		stores:    append([]CheckpointStore{FileStore{Path: checkpointPath(cfg)}}, opts.Checkpoints...),
		cpEvery:   cfg.CheckpointInterval,
		observer:  opts.Observer,
		cpStopped: make(chan struct{}),
		sealer:    newSealer(key),
		path:      cfg.Path,
		maxBytes:  cfg.MaxBytes,
		env:       opts.Environment,
		now:       opts.Now,
		log:       opts.Logger,
		content:   content,
		prev:      GenesisHash,
		reqs:      make(chan *writeReq, maxBatch),
		token:     make(chan struct{}, 1),
		quit:      make(chan struct{}),
		stopped:   make(chan struct{}),
	}
	if l.maxBytes <= 0 {
		l.maxBytes = 100 << 20
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if l.cpEvery <= 0 {
		l.cpEvery = time.Second
	}
	if created {
		l.log.Warn("audit chain key created; keep it away from whoever can write the audit log, and give it to the verifier", "path", chainKeyFile(cfg))
	}
	switch {
	case cfg.FSyncInterval == 0:
		l.every = true
	case cfg.FSyncInterval < 0:
		return nil, fmt.Errorf("opening audit log: fsync interval must be positive, got %v", cfg.FSyncInterval)
	default:
		l.interval = cfg.FSyncInterval
	}
	if err := os.MkdirAll(filepath.Dir(l.path), 0o700); err != nil {
		return nil, fmt.Errorf("opening audit log: creating directory: %w", err)
	}
	if err := l.openFile(); err != nil {
		return nil, fmt.Errorf("opening audit log: %w", err)
	}
	legacy, err := l.loadHead()
	if err != nil {
		l.f.Close()
		return nil, fmt.Errorf("opening audit log: continuing the chain: %w", err)
	}
	if err := l.checkCheckpoints(legacy); err != nil {
		l.f.Close()
		return nil, fmt.Errorf("opening audit log: %w", err)
	}
	h := &head{seq: l.seq, hash: l.prev}
	l.durable.Store(h)
	if err := l.saveCheckpoint(h); err != nil {
		l.f.Close()
		return nil, fmt.Errorf("opening audit log: writing the first checkpoint: %w", err)
	}
	if legacy {
		l.log.Warn("audit log ends with a record in the old unkeyed format; continuing it with keyed records, which seal it from here on", "path", l.path, "seq", l.seq)
	}
	go l.run()
	go l.checkpointer(h)
	return l, nil
}

// checkCheckpoints compares the head loaded from the trail with the latest
// stored checkpoint, so moat does not continue a chain over records cut
// while it was down (the next checkpoint would hide the cut).
func (l *Logger) checkCheckpoints(legacy bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cps, skipped, err := loadCheckpoints(ctx, l.stores, l.key)
	for _, s := range skipped {
		l.log.Warn("audit checkpoint store unreadable; not checked", "store", s)
	}
	if err != nil {
		return fmt.Errorf("%w: %w (run `moat audit verify`; `moat audit checkpoint` re-seals the trail once you know why)", ErrCheckpoint, err)
	}
	if len(cps) == 0 {
		if l.seq > 0 && !legacy {
			return fmt.Errorf("%w: the trail holds keyed records up to seq %d but no checkpoint was found in %s: it was deleted, or the trail was moved here (run `moat audit verify`; `moat audit checkpoint` re-seals the trail once you know why)", ErrCheckpoint, l.seq, l.stores[0].Name())
		}
		return nil
	}
	for _, cp := range cps {
		switch {
		case cp.Log != l.logAbs:
			return fmt.Errorf("%w: the checkpoint in %s belongs to the audit log %s, not %s (give each trail its own audit.checkpoint_path)", ErrCheckpoint, cp.from, cp.Log, l.logAbs)
		case cp.Seq > l.seq:
			return fmt.Errorf("%w: the trail ends at seq %d but the checkpoint of %s in %s says seq %d: records were cut from its end (run `moat audit verify`)", ErrCheckpoint, l.seq, cp.Time.Format(time.RFC3339), cp.from, cp.Seq)
		case cp.Seq == l.seq && cp.Head != l.prev:
			return fmt.Errorf("%w: the last record (seq %d) is not the one the checkpoint of %s in %s names: the end of the trail was replaced (run `moat audit verify`)", ErrCheckpoint, l.seq, cp.Time.Format(time.RFC3339), cp.from)
		}
	}
	return nil
}

// openFile opens l.path for appending and records its size.
func (l *Logger) openFile() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	if st.Mode().IsRegular() && st.Mode().Perm()&0o077 != 0 {
		if err := f.Chmod(0o600); err != nil {
			f.Close()
			return fmt.Errorf("restricting permissions of %s: %w", l.path, err)
		}
		l.log.Warn("audit file was readable by others; permissions set to 0600", "path", l.path)
	}
	l.f, l.size, l.fileInfo = f, st.Size(), st
	if st.Size() == 0 {
		// A new file (or one renamed aside just before): its directory
		// entry must be durable before a record in it is acknowledged.
		syncDir(filepath.Dir(l.path))
	}
	return nil
}

// reopenIfMoved starts a new file when the current one was moved or deleted
// behind moat's back (records would otherwise go to an unlinked file). The
// chain continues from memory, so a moved file still verifies with its
// successor, and a deleted one shows as a gap.
func (l *Logger) reopenIfMoved() error {
	st, err := os.Stat(l.path)
	if err == nil && os.SameFile(st, l.fileInfo) {
		return nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	old := l.f
	if l.dirty {
		// Its records are in the chain: sync them before letting go of
		// the file, or the next sync (of the new file) would publish them.
		if err := l.fsync(); err != nil {
			return fmt.Errorf("syncing the moved file: %w", err)
		}
	}
	if err := l.openFile(); err != nil {
		return err
	}
	old.Close()
	l.log.Warn("audit file was moved or deleted; started a new one", "path", l.path)
	return nil
}

// loadHead reads the last record of the current file, or of the newest
// rotated file when the current one is empty. legacy reports a last record
// in the old unkeyed format.
func (l *Logger) loadHead() (legacy bool, err error) {
	files, err := Files(l.path)
	if err != nil {
		return false, err
	}
	p := newLineParser(l.key)
	for i := len(files) - 1; i >= 0; i-- {
		li, ok, err := chainHead(files[i], p)
		if err != nil {
			return false, err
		}
		if ok {
			l.seq, l.prev = li.seq, li.hash
			return !li.keyed, nil
		}
	}
	return false, nil
}

// Write appends rec to the trail. It sets rec's Time, Environment, content
// fields and chain fields, scrubs secrets from every string field, and
// returns once the record is written (and synced, with fsync "every").
// Any failure returns a fault.AuditUnavailable wrapping ErrWrite (or
// ErrClosed, or ctx's error when ctx ends first, in which case the record
// may still be written).
// Safe for concurrent use; each call writes exactly one line.
func (l *Logger) Write(ctx context.Context, rec *Record) error {
	if l == nil {
		return nil
	}
	err := l.write(ctx, rec)
	if err != nil && l.observer != nil && errors.Is(err, ErrWrite) {
		l.observer.AuditWriteFailure()
	}
	return unavailable(err)
}

func (l *Logger) write(ctx context.Context, rec *Record) error {
	if rec == nil {
		return fmt.Errorf("%w: nil record", ErrWrite)
	}
	select {
	case <-l.quit:
		return ErrClosed
	default:
	}
	rec.Time = l.now().UTC()
	rec.Environment = l.env
	rec.Seq, rec.KeyID, rec.PrevHash, rec.Hash = 0, "", "", ""
	if math.IsNaN(rec.CostUSD) || math.IsInf(rec.CostUSD, 0) {
		// JSON cannot hold it, and a bad estimate must not refuse the request.
		l.log.Warn("audit: non-finite cost recorded as 0", "request_id", rec.RequestID)
		rec.CostUSD = 0
	}
	l.content.apply(rec)
	l.content.scrub(rec)
	body, err := marshalRecord(rec)
	if err != nil {
		return fmt.Errorf("%w: encoding: %v", ErrWrite, err)
	}
	r := &writeReq{body: body, done: make(chan error, 1)}
	select {
	case l.reqs <- r:
	case <-l.quit:
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrWrite, ctx.Err())
	}
	// Group commit without a hand-off: whoever takes the free token
	// writes (and syncs) every record queued, its own among them; records
	// queued meanwhile wait for the token and go together in the next
	// write. Alone, a request writes its own record on its own goroutine.
	for {
		select {
		case err := <-r.done:
			return l.acknowledge(rec, r, err)
		case l.token <- struct{}{}:
			l.lead(r)
			<-l.token
		case <-ctx.Done():
			if r.state.CompareAndSwap(reqWaiting, reqAbandoned) {
				return fmt.Errorf("%w: %w", ErrWrite, ctx.Err())
			}
			// Taken: the holder of the token answers it.
			return l.acknowledge(rec, r, <-r.done)
		}
	}
}

// acknowledge returns the answer err to r's Write, first filling rec's
// place in the chain when it was written.
func (l *Logger) acknowledge(rec *Record, r *writeReq, err error) error {
	if err != nil {
		return err
	}
	rec.Seq, rec.KeyID, rec.PrevHash, rec.Hash = r.seq, l.key.ID(), r.prev, r.hash
	return nil
}

// lead writes queued records, as the holder of the token, until r has its
// answer. r is either still queued or was answered by an earlier holder
// (a record taken from the queue is answered before the token is given
// back), so the queue cannot run dry before r is answered.
func (l *Logger) lead(r *writeReq) {
	for len(r.done) == 0 {
		select {
		case first := <-l.reqs:
			l.writeBatch(first)
		default:
			return
		}
	}
}

// Healthy returns nil when the last write succeeded, else a
// fault.AuditUnavailable wrapping the write error, or ErrClosed after
// Close. A nil *Logger is healthy.
func (l *Logger) Healthy() error {
	if l == nil {
		return nil
	}
	select {
	case <-l.quit:
		return unavailable(ErrClosed)
	default:
	}
	if p := l.health.Load(); p != nil {
		return unavailable(*p)
	}
	return nil
}

// Close writes the records already queued, syncs and closes the file,
// and writes a last checkpoint. Later Writes return ErrClosed. Close is
// idempotent.
func (l *Logger) Close() error {
	if l == nil {
		return nil
	}
	l.close.Do(func() { close(l.quit) })
	<-l.stopped
	<-l.cpStopped
	return errors.Join(l.closed, l.cpErr)
}

// LastCheckpoint returns the last checkpoint saved in the checkpoint file.
func (l *Logger) LastCheckpoint() (Checkpoint, bool) {
	if l == nil {
		return Checkpoint{}, false
	}
	if cp := l.checkpoint.Load(); cp != nil {
		return *cp, true
	}
	return Checkpoint{}, false
}

// checkpointer saves a checkpoint every cpEvery while the durable head
// moves, and a last one after the writer stops. last is the head Open
// saved: records may be written (and made durable, by the requests
// themselves) before this goroutine first runs.
func (l *Logger) checkpointer(last *head) {
	defer close(l.cpStopped)
	t := time.NewTicker(l.cpEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-l.stopped:
			if h := l.durable.Load(); h != last {
				l.cpErr = l.saveCheckpoint(h)
			}
			return
		}
		if h := l.durable.Load(); h != last && l.saveCheckpoint(h) == nil {
			last = h
		}
	}
}

// saveCheckpoint writes a checkpoint of h to every store. Only a failure
// of the checkpoint file is returned; other stores are logged.
func (l *Logger) saveCheckpoint(h *head) error {
	cp := Checkpoint{Seq: h.seq, Head: h.hash, Time: time.Now().UTC(), KeyID: l.key.ID(), Log: l.logAbs}
	line := MarshalCheckpoint(cp, l.key)
	var fileErr error
	for i, st := range l.stores {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := st.Save(ctx, line)
		cancel()
		if err == nil {
			continue
		}
		err = fmt.Errorf("saving audit checkpoint to %s: %w", st.Name(), err)
		l.log.Error("audit checkpoint not saved", "err", err)
		if l.observer != nil {
			l.observer.AuditCheckpointFailure()
		}
		if i == 0 {
			fileErr = err
		}
	}
	if fileErr != nil {
		return fileErr
	}
	l.checkpoint.Store(&cp)
	if l.observer != nil {
		l.observer.AuditCheckpoint(cp.Seq, cp.Head, cp.Time)
	}
	return nil
}

// run syncs on the interval (fsync other than "every") and, at Close,
// writes what is queued, syncs and closes the file; each time it holds
// the writer token.
func (l *Logger) run() {
	defer close(l.stopped)
	var tick <-chan time.Time
	if !l.every {
		t := time.NewTicker(l.interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-tick:
			l.token <- struct{}{}
			if l.dirty {
				l.sync()
			}
			<-l.token
		case <-l.quit:
			l.token <- struct{}{}
			defer func() { <-l.token }()
			for {
				select {
				case r := <-l.reqs:
					l.writeBatch(r)
					continue
				default:
				}
				break
			}
			l.shut = true
			var errs []error
			if l.f != nil {
				if err := l.fsync(); err != nil && l.dirty {
					errs = append(errs, fmt.Errorf("syncing audit log: %w", err))
				} else if err == nil {
					l.publish()
				}
				if err := l.f.Close(); err != nil {
					errs = append(errs, fmt.Errorf("closing audit log: %w", err))
				}
			}
			l.closed = errors.Join(errs...)
			return
		}
	}
}

func (l *Logger) setHealth(err error) {
	if err == nil {
		l.health.Store(nil)
		return
	}
	l.health.Store(&err)
}

func (l *Logger) sync() {
	l.stats.syncs.Add(1)
	if err := l.fsync(); err != nil {
		err = fmt.Errorf("%w: syncing %s: %v", ErrWrite, l.path, err)
		l.setHealth(err)
		l.log.Error("audit sync failed", "err", err)
		return
	}
	l.setHealth(nil)
	l.dirty = false
	l.publish()
}

// publish makes the current head (synced) visible to the checkpointer.
func (l *Logger) publish() {
	if h := l.durable.Load(); h == nil || h.seq != l.seq {
		l.durable.Store(&head{seq: l.seq, hash: l.prev})
	}
}

// writeBatch writes first and every record waiting behind it.
func (l *Logger) writeBatch(first *writeReq) {
	batch := append(l.batch[:0], first)
	// The array is kept for the next batch; its requests (and their
	// records' bodies) are not.
	defer func() { clear(batch) }() // later slots were cleared by earlier batches
	for len(batch) < maxBatch {
		select {
		case r := <-l.reqs:
			batch = append(batch, r)
			continue
		default:
		}
		break
	}
	// Drop records whose writers gave up before we took them.
	live := batch[:0]
	for _, r := range batch {
		if r.state.CompareAndSwap(reqWaiting, reqTaken) {
			live = append(live, r)
		}
	}
	l.batch = batch[:0]
	if l.shut {
		l.failAll(live, ErrClosed)
		return
	}
	if err := l.reopenIfMoved(); err != nil {
		err = fmt.Errorf("%w: reopening %s: %v", ErrWrite, l.path, err)
		l.setHealth(err)
		l.log.Error("audit reopen failed", "err", err)
		l.failAll(live, err)
		return
	}
	buf := l.buf[:0]
	seq, prev := l.seq, l.prev
	start := 0 // first record of live in buf
	for i, r := range live {
		line, h := l.sealer.seal(buf, r.body, seq+1, prev)
		lineLen := int64(len(line) - len(buf))
		if l.size+int64(len(buf))+lineLen > l.maxBytes && l.size+int64(len(buf)) > 0 {
			if len(buf) > 0 {
				if err := l.flush(buf, live[start:i]); err != nil {
					l.failAll(live[i:], err)
					l.buf = buf[:0]
					return
				}
				buf = buf[:0]
				start = i
			}
			if err := l.rotate(); err != nil {
				err = fmt.Errorf("%w: rotating %s: %v", ErrWrite, l.path, err)
				l.setHealth(err)
				l.log.Error("audit rotation failed", "err", err)
				l.failAll(live[i:], err)
				l.buf = buf[:0]
				return
			}
			line, h = l.sealer.seal(buf, r.body, seq+1, prev)
		}
		buf = line
		r.seq, r.prev, r.hash = seq+1, prev, h
		seq, prev = seq+1, h
	}
	if len(buf) > 0 {
		l.flush(buf, live[start:])
	}
	if cap(buf) <= 1<<20 {
		l.buf = buf[:0]
	} else {
		l.buf = nil
	}
}

// flush writes buf (the lines of rs) and answers rs.
func (l *Logger) flush(buf []byte, rs []*writeReq) error {
	n, err := l.f.Write(buf)
	if err != nil {
		if n > 0 {
			// Remove a partial write so the file still ends on a record.
			_ = l.f.Truncate(l.size)
		}
		err = fmt.Errorf("%w: writing %s: %v", ErrWrite, l.path, err)
		l.setHealth(err)
		l.log.Error("audit write failed", "err", err)
		l.failAll(rs, err)
		return err
	}
	if l.every {
		l.stats.syncs.Add(1)
		if err := l.fsync(); err != nil {
			// The batch's requests are refused, so take its records out
			// of the file and the chain: the next batch relinks to the
			// last durable record. If even that fails, the lines stay
			// (the chain is still exact) and Healthy reports the error.
			if terr := l.f.Truncate(l.size); terr != nil {
				l.size += int64(n)
				l.seq, l.prev = rs[len(rs)-1].seq, rs[len(rs)-1].hash
				l.dirty = true
			}
			err = fmt.Errorf("%w: syncing %s: %v", ErrWrite, l.path, err)
			l.setHealth(err)
			l.log.Error("audit sync failed", "err", err)
			l.failAll(rs, err)
			return err
		}
	}
	l.size += int64(n)
	last := rs[len(rs)-1]
	l.seq, l.prev = last.seq, last.hash
	l.dirty = !l.every
	if l.every {
		l.publish()
	}
	l.stats.records.Add(uint64(len(rs)))
	if !l.syncFailed {
		// A write that reached only the page cache does not make a
		// failed interval sync healthy again.
		l.setHealth(nil)
	}
	for _, r := range rs {
		r.done <- nil
	}
	return nil
}

// fsync syncs the current file (through syncHook in tests).
func (l *Logger) fsync() error {
	t0 := time.Now()
	defer func() { l.stats.syncNanos.Add(uint64(time.Since(t0))) }()
	var err error
	if l.syncHook != nil {
		err = l.syncHook(l.f)
	} else {
		err = datasync(l.f)
	}
	// A failed sync, wherever it happened (interval, rotation, a moved
	// file), keeps the trail unhealthy until one succeeds: a later write
	// reaches only the page cache.
	l.syncFailed = err != nil
	return err
}

// Stats counts what the writer did since Open.
type Stats struct {
	// Records is the number of records written (and synced, with fsync
	// "every"); Syncs the number of fsyncs that covered them. With group
	// commit, Records/Syncs is the mean batch size.
	Records, Syncs uint64
	// SyncTime is the time spent in those fsyncs.
	SyncTime time.Duration
}

// Stats returns the writer's counters.
func (l *Logger) Stats() Stats {
	if l == nil {
		return Stats{}
	}
	return Stats{Records: l.stats.records.Load(), Syncs: l.stats.syncs.Load(), SyncTime: time.Duration(l.stats.syncNanos.Load())}
}

func (l *Logger) failAll(rs []*writeReq, err error) {
	for _, r := range rs {
		r.done <- err
	}
}

// rotate renames the current file aside and starts a new one.
func (l *Logger) rotate() error {
	if err := l.fsync(); err != nil {
		return fmt.Errorf("syncing before rotation: %w", err)
	}
	l.dirty = false
	l.publish()
	t := l.now().UTC()
	var target string
	for {
		target = l.path + "." + t.Format(rotatedLayout)
		if _, err := os.Lstat(target); errors.Is(err, os.ErrNotExist) {
			break
		}
		t = t.Add(time.Nanosecond)
	}
	if err := os.Rename(l.path, target); err != nil {
		return err
	}
	old := l.f
	if err := l.openFile(); err != nil {
		// Put the old file back so the next record retries the rotation.
		if rerr := os.Rename(target, l.path); rerr != nil {
			l.log.Error("audit rotation: cannot restore the current file", "rotated", target, "err", rerr)
		}
		l.f = old
		return fmt.Errorf("creating new file: %w", err)
	}
	old.Close() // openFile synced the directory: the rename and the new file
	l.log.Info("audit log rotated", "rotated", target)
	return nil
}

// syncDir makes a rename durable; failures are ignored (not all systems
// support syncing a directory).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
