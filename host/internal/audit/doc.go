// Package audit writes moat's tamper-evident audit trail: one JSON line per
// request (served or refused), each carrying a keyed hash (HMAC-SHA-256)
// of its content and of the line before it, plus keyed checkpoints kept
// away from the log; and it verifies such trails.
//
// # File layout
//
// Records are appended to config audit.path (created 0600, its directory
// 0700). When the next record would take the file past audit.max_size_mb,
// the file is renamed to path + "." + the UTC time of rotation in the fixed
// width layout 20060102T150405.000000000Z (so lexical order is chronological
// and Files lists them in chain order) and a new file is started. Rotated
// files are never deleted by moat. The chain continues across files: the
// first record of a new file links to the last record of the previous one,
// and on restart Open reads the last record of the existing file (or of the
// newest rotated file if the current one is empty) to continue it. If the
// file is moved away (external log rotation) or deleted while moat runs,
// the next record starts a new file at path, still linked to the chain.
//
// # Line format (format 2, keyed)
//
// A line is a JSON object (see Record) whose last four members are
//
//	,"seq":N,"key_id":"K","prev_hash":"P","hash":"H"}
//
// seq counts records from 1 across rotated files; key_id is the public id
// of the chain key (16 hex digits); prev_hash is the hash of the previous
// record (GenesisHash, 64 zeros, for seq 1); hash is the lowercase hex
// HMAC-SHA-256, under the record key derived from the chain key, of the
// line's bytes with the `,"hash":"H"` member removed (so ending in
// `"prev_hash":"P"}`). testdata/verify holds example trails.
//
// The chain key (audit.chain_key_env or audit.chain_key_file; by default
// the file .moat-audit-chain.key next to the config, created with 32 random
// bytes on first start) is a separate key from the content key
// (hmac_key_env): content digests may be handed to people who look texts
// up, the chain key must stay with moat and the verifier. Two keys are
// derived from it with HMAC-SHA-256 of fixed labels (records, checkpoints)
// and a third gives key_id, so pointing both settings at one secret still
// keeps the uses apart.
//
// # Checkpoints
//
// A checkpoint is one line, in the checkpoint file (audit.checkpoint_path,
// by default .moat-audit-checkpoint next to the config, beside the limit
// state; replaced atomically), under a Redis key when limits.store =
// "redis" (see RedisCheckpointKey), and on the metrics page
// (moat_audit_checkpoint_seq, _timestamp_seconds and _head_prefix):
//
//	{"moat_audit_checkpoint":2,"seq":N,"head":"H","time":"T","key_id":"K","log":"/abs/audit.jsonl","mac":"M"}
//
// seq and head name the last durable record (seq 0 and GenesisHash for an
// empty trail), time is RFC 3339 UTC, log is the trail's absolute path, and
// mac is the hex HMAC-SHA-256 under the checkpoint key of the line without
// its `,"mac":"M"` member. Open writes one for the head it continues from,
// then one every audit.checkpoint_interval (default 1s) while records
// arrive, and a last one at Close. So a cut of the trail's end goes
// unnoticed only for records written after the last checkpoint: at most
// one interval's worth.
//
// Open refuses to continue a trail that ends before its checkpoint, whose
// last record is not the one the checkpoint names, or that holds keyed
// records but has no checkpoint: continuing would let the next checkpoint
// hide a cut made while moat was down. `moat audit checkpoint` (Reseal) is
// the operator's way out once they know why.
//
// # Verification
//
// Verify (and VerifyTrail, which `moat audit verify --config` runs) fails,
// with a Problem naming the file, line, seq and kind, on a record edited
// (its MAC does not match; re-hashing with plain SHA-256 does not help), a
// record in the old format after keyed ones (downgraded), a record sealed
// with another key, records deleted, inserted or reordered, a trail that
// does not start at seq 1 (cut head; --from-seq allows a deliberate
// removal of old files), a trail that ends before a checkpoint (cut tail)
// or disagrees with one, a stored checkpoint that does not authenticate,
// and a non-empty trail with no checkpoint at all.
//
// What it cannot catch: a holder of the chain key can rewrite anything
// (keep the key away from whoever can write the log); and someone able to
// write both the log and every store of the checkpoint can roll both back
// to an older consistent state. The Redis copy and the metrics history
// (scraped off-host; `moat audit verify --checkpoint SEQ:=HEAD` checks the
// trail against any scraped point) are there for the second case.
//
// # Logs written in the old format
//
// Before format 2, lines had no key_id and hash was the plain SHA-256 of the
// line: anyone able to write the file could re-forge it. Such a trail alone
// now fails verification (KindUnauthenticated): nothing proves it was not
// rewritten. moat keeps such a trail rather than moving it aside: Open
// continues it with keyed records, the first of which links (under the
// MAC) to the last old record, so the old records are sealed as they were
// at that moment; Verify then accepts old-format records only before the
// first keyed one, and says so in a note. An old record edited before the
// upgrade cannot be detected; one edited after it breaks the link.
//
// # Durability, group commit and failure
//
// With fsync "every", Write returns once the record is written and synced
// (fdatasync on Linux): a response is never sent before its record is
// durable. Whoever holds the writer token owns the file: a Write that
// finds it free writes every queued record, its own among them, on its
// own goroutine (alone, a request pays no hand-off to another goroutine);
// records that arrive while it writes and syncs wait in the queue and are
// then written with one write and covered by one fsync by the next holder
// (group commit, as databases do). The chain is computed by the holder in
// queue order, so sequence numbers and links stay exact. With an interval,
// Write returns once the record is written to the file, and a background
// goroutine takes the token to sync dirty data each interval; checkpoints
// only ever name synced records.
//
// Write fails closed: any record that could not be written or synced
// returns an error wrapping ErrWrite (counted by Observer, which is
// moat_audit_write_failures_total), and Healthy reports the failure until
// a later write succeeds. A failed fsync refuses every request of its
// group and truncates their lines away, so no record claims a request
// that was refused; the next group links to the last durable record.
//
// # RATIONALE: the cost of group commit
//
// BenchmarkGroupCommit measures Write against the plain alternative in the
// same run and at the same concurrency: json.Marshal of the same record
// appended to a bufio.Writer (behind a mutex; no fsync, no chain, no
// secret scrubbing). On the shared 2-core development machine (ext4,
// Go 1.26.8; `go test -run '^$' -bench BenchmarkGroupCommit -benchtime
// 2000x ./host/internal/audit/`, one run):
//
//	concurrency fsync records/fsync  CPU/record        wall/record
//	 1          every     1.0        159 us (40.8x)    1381 us (67.5x)
//	 8          every     4.0         50 us (15.5x)     238 us (76.7x)
//	32          every    15.8         18 us ( 5.2x)      87 us (26.7x)
//	 1          1s         -          11 us ( 2.9x)      11 us ( 0.5x)
//	32          1s         -          11 us ( 3.2x)      11 us ( 3.2x)
//
// The baseline costs 3.2-3.9 us of CPU per record. An fsync took 0.9-1.3 ms
// on this disk (it varies several-fold between runs on the shared
// machine, so compare within a run). Without group commit every record
// would pay the concurrency-1 row; with it, the fsync's cost is shared,
// and the cost per record falls about as fast as the group grows.
//
// A group holds about half the concurrent writers: the writers answered by
// one fsync queue up again while the next one runs, so two cohorts
// alternate. Waiting a little before each fsync (PostgreSQL's
// commit_delay) would merge them at the price of latency at low
// concurrency; it is not done. The fsync dominates everything else: the
// keyed hash and JSON encoding cost a few microseconds per record, the
// fsync hundreds (and its kernel time is most of the CPU per record at
// concurrency 1), so sharing it is what brings the cost per record down as
// concurrency grows.
package audit
