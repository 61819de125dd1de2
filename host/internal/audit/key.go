package audit

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// MinChainKeyBytes is the shortest chain key Open and Verify accept.
const MinChainKeyBytes = 16

// Default file names, next to the audit file, used when a Config
// leaves them empty.
const (
	defaultChainKeyFile   = ".moat-audit-chain.key"
	defaultCheckpointFile = ".moat-audit-checkpoint"
)

// ChainKey holds the keys derived from the configured chain secret: one for
// the MAC of each record, one for checkpoints, and a short public id that
// every record and checkpoint carries so a verifier holding another key
// says so instead of reporting every record as edited.
//
// The derivation (HMAC-SHA-256 of a fixed label under the secret) keeps the
// chain independent of the content digests even if an operator points
// chain_key_env and hmac_key_env at the same secret.
type ChainKey struct {
	record     []byte
	checkpoint []byte
	id         string
}

// NewChainKey derives a ChainKey from secret (at least MinChainKeyBytes).
func NewChainKey(secret []byte) (*ChainKey, error) {
	if len(secret) < MinChainKeyBytes {
		return nil, fmt.Errorf("audit chain key is %d bytes; at least %d are required", len(secret), MinChainKeyBytes)
	}
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(label))
		return m.Sum(nil)
	}
	k := &ChainKey{record: derive("moat audit chain v2"), checkpoint: derive("moat audit checkpoint v2")}
	id := derive("moat audit key id v2")
	k.id = hex.EncodeToString(id[:8])
	return k, nil
}

// ID is the key's public 16-hex-digit id, written in every record.
func (k *ChainKey) ID() string { return k.id }

func (k *ChainKey) recordMAC() hash.Hash     { return hmac.New(sha256.New, k.record) }
func (k *ChainKey) checkpointMAC() hash.Hash { return hmac.New(sha256.New, k.checkpoint) }

// chainKeyFile returns the key file of cfg ("" when the key comes from the
// environment).
func chainKeyFile(cfg Config) string {
	if cfg.ChainKeyEnv != "" {
		return ""
	}
	if cfg.ChainKeyFile != "" {
		return cfg.ChainKeyFile
	}
	return filepath.Join(filepath.Dir(cfg.Path), defaultChainKeyFile)
}

// checkpointPath returns the checkpoint file of cfg.
func checkpointPath(cfg Config) string {
	if cfg.CheckpointPath != "" {
		return cfg.CheckpointPath
	}
	return filepath.Join(filepath.Dir(cfg.Path), defaultCheckpointFile)
}

// LoadChainKey reads the chain key of cfg: from the environment variable
// chain_key_env, or from chain_key_file. With create set (moat serve) a
// missing key file is created with 32 random bytes (hex, 0600); without it
// (moat audit verify) a missing key is an error. created reports whether a
// new key was made.
func LoadChainKey(cfg Config, create bool) (k *ChainKey, created bool, err error) {
	if cfg.ChainKeyEnv != "" {
		v := os.Getenv(cfg.ChainKeyEnv)
		if v == "" {
			return nil, false, fmt.Errorf("%w: environment variable %s (audit.chain_key_env) is not set", ErrNoChainKey, cfg.ChainKeyEnv)
		}
		k, err := NewChainKey([]byte(v))
		return k, false, err
	}
	path := chainKeyFile(cfg)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		if err := createKeyFile(path); err != nil {
			return nil, false, fmt.Errorf("creating audit chain key %s: %w", path, err)
		}
		created = true
		b, err = os.ReadFile(path)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("%w: %s does not exist (set audit.chain_key_file or audit.chain_key_env)", ErrNoChainKey, path)
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading audit chain key: %w", err)
	}
	k, err = NewChainKey([]byte(strings.TrimSpace(string(b))))
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", path, err)
	}
	return k, created, nil
}

// createKeyFile writes 32 random bytes, hex-encoded, to a new file (never
// overwriting one that appeared meanwhile).
func createKeyFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := f.WriteString(hex.EncodeToString(raw[:]) + "\n"); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	syncDir(filepath.Dir(path))
	return nil
}
