package audit

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/google/renameio/v2"
	"github.com/redis/go-redis/v9"
)

// CheckpointVersion is the value of the "moat_audit_checkpoint" member of
// every checkpoint this package writes.
const CheckpointVersion = 2

// maxCheckpointBytes bounds a stored checkpoint (a path is the only
// variable-length member).
const maxCheckpointBytes = 8 << 10

// macSuffixLen is len(`,"mac":"` + 64 hex + `"}`).
const macSuffixLen = len(`,"mac":"`) + 64 + len(`"}`)

// Checkpoint is a keyed statement that the trail held Seq records ending
// with the record whose hash is Head, at Time. Checkpoints are kept away
// from the log (a file beside moat's state, Redis when configured, and the
// metrics page), so whoever cuts records from the log, or rewrites it,
// must also roll back every copy of the checkpoint, which cannot be forged
// without the chain key.
type Checkpoint struct {
	// Seq is the sequence number of the last durable record; 0 for an
	// empty trail (written when moat starts on one).
	Seq uint64
	// Head is that record's hash (GenesisHash when Seq is 0).
	Head string
	// Time is when the checkpoint was taken, UTC.
	Time time.Time
	// KeyID is the id of the chain key that MACs the checkpoint.
	KeyID string
	// Log is the absolute path of the audit file the checkpoint covers.
	Log string
}

// checkpointJSON is the decoded form; members stay in this order.
type checkpointJSON struct {
	Version *int       `json:"moat_audit_checkpoint"`
	Seq     *uint64    `json:"seq"`
	Head    *string    `json:"head"`
	Time    *time.Time `json:"time"`
	KeyID   *string    `json:"key_id"`
	Log     *string    `json:"log"`
}

// MarshalCheckpoint encodes cp as one line, MAC'd with k:
//
//	{"moat_audit_checkpoint":2,"seq":N,"head":"H","time":"T","key_id":"K","log":"P","mac":"M"}
//
// M is the hex HMAC-SHA-256, under the checkpoint key derived from the
// chain key, of the line's bytes with the `,"mac":"M"` member removed.
func MarshalCheckpoint(cp Checkpoint, k *ChainKey) []byte {
	b := make([]byte, 0, 256+len(cp.Log))
	b = append(b, `{"moat_audit_checkpoint":`...)
	b = strconv.AppendInt(b, CheckpointVersion, 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, cp.Seq, 10)
	b = append(b, `,"head":`...)
	b = appendJSONString(b, cp.Head)
	b = append(b, `,"time":`...)
	b = appendJSONString(b, cp.Time.UTC().Format(time.RFC3339Nano))
	b = append(b, `,"key_id":`...)
	b = appendJSONString(b, k.ID())
	b = append(b, `,"log":`...)
	b = appendJSONString(b, cp.Log)
	b = append(b, '}')
	m := k.checkpointMAC()
	m.Write(b)
	b = b[:len(b)-1]
	b = append(b, `,"mac":"`...)
	b = hex.AppendEncode(b, m.Sum(nil))
	b = append(b, "\"}\n"...)
	return b
}

func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always encodes
	return append(b, q...)
}

// ParseCheckpoint decodes and authenticates one checkpoint line (a
// trailing newline is allowed). It fails, wrapping ErrBadCheckpoint, when
// the line is malformed, was MAC'd with another key, or was altered.
func ParseCheckpoint(line []byte, k *ChainKey) (Checkpoint, error) {
	bad := func(format string, args ...any) (Checkpoint, error) {
		return Checkpoint{}, fmt.Errorf("%w: %s", ErrBadCheckpoint, fmt.Sprintf(format, args...))
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	if len(line) > maxCheckpointBytes {
		return bad("longer than %d bytes", maxCheckpointBytes)
	}
	if len(line) < macSuffixLen+2 || line[0] != '{' {
		return bad("too short to be a checkpoint")
	}
	suffix := line[len(line)-macSuffixLen:]
	if !bytes.HasPrefix(suffix, []byte(`,"mac":"`)) || !bytes.HasSuffix(suffix, []byte(`"}`)) {
		return bad(`does not end with a "mac" member`)
	}
	var stated [sha256.Size]byte
	macHex := suffix[len(`,"mac":"`) : len(`,"mac":"`)+64]
	if bytes.ContainsFunc(macHex, func(r rune) bool { return r >= 'A' && r <= 'F' }) {
		// One checkpoint has one spelling: moat writes lowercase.
		return bad("mac must be 64 lowercase hex digits")
	}
	if _, err := hex.Decode(stated[:], macHex); err != nil {
		return bad("mac is not hex")
	}
	body := make([]byte, 0, len(line)-macSuffixLen+1)
	body = append(body, line[:len(line)-macSuffixLen]...)
	body = append(body, '}')
	var cj checkpointJSON
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cj); err != nil {
		return bad("not a checkpoint object: %v", err)
	}
	if dec.More() {
		return bad("trailing data")
	}
	if cj.Version == nil || cj.Seq == nil || cj.Head == nil || cj.Time == nil || cj.KeyID == nil || cj.Log == nil {
		return bad("missing member (want moat_audit_checkpoint, seq, head, time, key_id, log, mac)")
	}
	if *cj.Version != CheckpointVersion {
		return bad("version %d, want %d", *cj.Version, CheckpointVersion)
	}
	if !isHex64(*cj.Head) || (*cj.Seq == 0) != (*cj.Head == GenesisHash) {
		return bad("head must be 64 lowercase hex digits, the genesis hash exactly when seq is 0")
	}
	if *cj.KeyID != k.ID() {
		return bad("MAC'd with chain key id %q, but the configured key's id is %q", *cj.KeyID, k.ID())
	}
	m := k.checkpointMAC()
	m.Write(body)
	if !hmac.Equal(m.Sum(nil), stated[:]) {
		return bad("mac does not match (the checkpoint was altered or forged)")
	}
	return Checkpoint{Seq: *cj.Seq, Head: *cj.Head, Time: cj.Time.UTC(), KeyID: *cj.KeyID, Log: *cj.Log}, nil
}

// CheckpointStore keeps the latest checkpoint somewhere other than the log.
type CheckpointStore interface {
	// Name describes the store in reports ("file /var/lib/moat/...").
	Name() string
	// Save replaces the stored checkpoint line.
	Save(ctx context.Context, line []byte) error
	// Load returns the stored line, or nil and no error when none is
	// stored.
	Load(ctx context.Context) ([]byte, error)
}

// FileStore keeps the checkpoint in one file, replaced atomically (write a
// temporary file, fsync, rename, fsync the directory).
type FileStore struct{ Path string }

// Name implements CheckpointStore.
func (s FileStore) Name() string { return "file " + s.Path }

// Save implements CheckpointStore.
func (s FileStore) Save(_ context.Context, line []byte) error {
	if err := os.MkdirAll(filepath.Dir(s.Path), 0o700); err != nil {
		return err
	}
	if err := renameio.WriteFile(s.Path, line, 0o600); err != nil {
		return err
	}
	syncDir(filepath.Dir(s.Path))
	return nil
}

// Load implements CheckpointStore.
func (s FileStore) Load(context.Context) ([]byte, error) {
	f, err := os.Open(s.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCheckpointBytes+2))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", s.Path, err)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("%s is empty", s.Path)
	}
	return b, nil
}

// RedisStore keeps the checkpoint under one Redis key.
type RedisStore struct {
	Client *redis.Client
	Key    string
}

// Name implements CheckpointStore.
func (s *RedisStore) Name() string { return "redis key " + s.Key }

// Save implements CheckpointStore.
func (s *RedisStore) Save(ctx context.Context, line []byte) error {
	return s.Client.Set(ctx, s.Key, line, 0).Err()
}

// Load implements CheckpointStore.
func (s *RedisStore) Load(ctx context.Context) ([]byte, error) {
	b, err := s.Client.Get(ctx, s.Key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	return b, err
}

// RedisCheckpointKey names the Redis key of the trail at logPath on this
// host: "moat:audit:checkpoint:" + 16 hex digits of SHA-256(host, path),
// so instances sharing one Redis keep separate checkpoints.
func RedisCheckpointKey(logPath string) string {
	host, _ := os.Hostname()
	abs, err := filepath.Abs(logPath)
	if err != nil {
		abs = logPath
	}
	sum := sha256.Sum256([]byte(host + "\x00" + abs))
	return "moat:audit:checkpoint:" + hex.EncodeToString(sum[:8])
}

// NewRedisStore connects to the Redis at url (redis://...) for the trail at
// logPath.
func NewRedisStore(url, logPath string) (*RedisStore, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("parsing redis url: %w", err)
	}
	return &RedisStore{Client: redis.NewClient(opt), Key: RedisCheckpointKey(logPath)}, nil
}

// loadedCheckpoint is a checkpoint and where it came from.
type loadedCheckpoint struct {
	Checkpoint
	from string
}

// loadCheckpoints reads and authenticates the checkpoint of every store.
// A store that cannot be read is skipped and described in skipped; a
// checkpoint that does not authenticate is an error.
func loadCheckpoints(ctx context.Context, stores []CheckpointStore, k *ChainKey) (cps []loadedCheckpoint, skipped []string, err error) {
	for _, s := range stores {
		line, err := s.Load(ctx)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("%s: %v", s.Name(), err))
			continue
		}
		if line == nil {
			continue
		}
		cp, err := ParseCheckpoint(line, k)
		if err != nil {
			return nil, skipped, fmt.Errorf("%s: %w", s.Name(), err)
		}
		cps = append(cps, loadedCheckpoint{cp, s.Name()})
	}
	return cps, skipped, nil
}
