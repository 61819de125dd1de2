// Package keysource holds the upstream Anthropic key moat calls Claude with.
//
// The key comes from an environment variable (upstream.api_key_env, default
// ANTHROPIC_API_KEY) or a file (upstream.api_key_file). A file is watched —
// its directory, so an atomic rename-replace by an editor or a Kubernetes
// secret's ..data symlink swap is seen — and re-read on Reload (SIGHUP).
// Key is lock-free, so a rotated key is used by the next request at once.
// A file that turns missing, empty or malformed keeps the last good key and
// the reason is logged with the key's fingerprint, never the key.
package keysource

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// maxKeyFileBytes bounds the key file.
const maxKeyFileBytes = 4096

// maxPrevious is how many earlier keys Secrets keeps.
const maxPrevious = 4

// debounce is how long the watcher waits after the last event before it
// re-reads the file, so a write in several steps is read once, whole.
const debounce = 50 * time.Millisecond

// Source provides the current upstream key. Use New; the zero value is not
// usable.
type Source struct {
	key    atomic.Pointer[string]
	prev   atomic.Pointer[[]string] // newest first
	path   string                   // "" when the key comes from the environment
	logger *slog.Logger

	mu      sync.Mutex // serializes reloads
	watcher *fsnotify.Watcher
	done    chan struct{}
	wg      sync.WaitGroup
	close   sync.Once
}

// Config says where the upstream key is: [upstream] api_key_file and
// api_key_env, compiled by host/internal/plan (whose default env is
// ANTHROPIC_API_KEY). The zero value names no source and New refuses it.
type Config struct {
	// File, when set, holds the key; it is watched and re-read on change.
	File string
	// Env names the environment variable holding the key when File is "".
	Env string
}

// New reads the key named by cfg: the file when set, else the environment
// variable. A file is then watched until Close. A nil logger discards
// logs.
func New(cfg Config, logger *slog.Logger) (*Source, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Source{logger: logger, done: make(chan struct{})}
	s.prev.Store(&[]string{})
	if cfg.File == "" {
		name := cfg.Env
		if name == "" {
			return nil, errors.New("no upstream key source: set upstream.api_key_env or upstream.api_key_file")
		}
		k, err := clean(os.Getenv(name))
		if err != nil {
			return nil, fmt.Errorf("upstream key from environment variable %s: %w (set it, or set upstream.api_key_file)", name, err)
		}
		s.key.Store(&k)
		logger.Info("upstream key loaded", "source", "env", "env", name, "fingerprint", Fingerprint(k))
		return s, nil
	}
	s.path = cfg.File
	k, err := readKeyFile(s.path)
	if err != nil {
		return nil, err
	}
	s.key.Store(&k)
	logger.Info("upstream key loaded", "source", "file", "path", s.path, "fingerprint", Fingerprint(k))
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watching upstream key file: %w", err)
	}
	if err := w.Add(filepath.Dir(s.path)); err != nil {
		w.Close()
		return nil, fmt.Errorf("watching directory of upstream key file %s: %w", s.path, err)
	}
	s.watcher = w
	s.wg.Add(1)
	go s.watch()
	return s, nil
}

// Key returns the current key. It never blocks and never returns "".
func (s *Source) Key() string { return *s.key.Load() }

// Secrets returns the current key followed by up to four earlier ones, for
// scrubbing logs and audit records.
func (s *Source) Secrets() []string {
	prev := *s.prev.Load()
	out := make([]string, 0, 1+len(prev))
	out = append(out, s.Key())
	return append(out, prev...)
}

// Reload re-reads the key file. On an error the current key stays in use.
// With the key from the environment it does nothing: a process's
// environment does not change.
func (s *Source) Reload() error {
	if s.path == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k, err := readKeyFile(s.path)
	old := s.Key()
	if err != nil {
		s.logger.Warn("upstream key file not reloaded; keeping the current key", "path", s.path, "error", err, "fingerprint", Fingerprint(old))
		return err
	}
	if k == old {
		return nil
	}
	prev := append([]string{old}, *s.prev.Load()...)
	if len(prev) > maxPrevious {
		prev = prev[:maxPrevious]
	}
	// Publish the previous list first: a scrubber reading Secrets between
	// the two stores sees the old key twice rather than missing it.
	s.prev.Store(&prev)
	s.key.Store(&k)
	s.logger.Info("upstream key rotated", "path", s.path, "fingerprint", Fingerprint(k), "previous", Fingerprint(old))
	return nil
}

// Close stops watching the file. It is safe to call more than once.
func (s *Source) Close() error {
	var err error
	s.close.Do(func() {
		close(s.done)
		if s.watcher != nil {
			err = s.watcher.Close()
		}
		s.wg.Wait()
	})
	return err
}

// watch re-reads the file, debounced, after any event in its directory:
// the key file itself may be a symlink through a directory swapped by name
// (Kubernetes' ..data), so every event may concern it.
func (s *Source) watch() {
	defer s.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-s.done:
			timer.Stop()
			return
		case _, ok := <-s.watcher.Events:
			if !ok {
				return
			}
			timer.Reset(debounce)
		case err, ok := <-s.watcher.Errors:
			if !ok {
				return
			}
			s.logger.Warn("watching upstream key file", "path", s.path, "error", err)
		case <-timer.C:
			_ = s.Reload() // logged by Reload
		}
	}
}

// Fingerprint names a key in logs without revealing it: "sha256:" and the
// first 12 hex characters of its SHA-256.
func Fingerprint(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:6])
}

func readKeyFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("upstream key file %s does not exist (put the Anthropic key in it, mode 0600, or use upstream.api_key_env)", path)
		}
		return "", fmt.Errorf("opening upstream key file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFileBytes+1))
	if err != nil {
		return "", fmt.Errorf("reading upstream key file %s: %w", path, err)
	}
	if len(b) > maxKeyFileBytes {
		return "", fmt.Errorf("upstream key file %s is larger than %d bytes; it should hold only the key", path, maxKeyFileBytes)
	}
	k, err := clean(string(b))
	if err != nil {
		return "", fmt.Errorf("upstream key file %s: %w", path, err)
	}
	return k, nil
}

// clean trims surrounding whitespace and refuses an empty key or one with
// inner whitespace or control characters (which could split a header).
func clean(s string) (string, error) {
	k := strings.TrimSpace(s)
	if k == "" {
		return "", errors.New("empty")
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; c <= ' ' || c == 0x7f {
			return "", errors.New("key contains whitespace or control characters (one key, on one line)")
		}
	}
	return k, nil
}
