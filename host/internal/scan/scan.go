// Package scan looks for leaked Anthropic keys in files a user points at,
// typically a front-end build: keys themselves (sk-ant-...), and
// browser-exposed environment variables (NEXT_PUBLIC_, VITE_, REACT_APP_,
// EXPO_PUBLIC_) that hold or name one. Every file under the given paths is
// read as bytes, whatever its extension (node_modules included); files over
// MaxFileBytes are not read and are reported as KindSkipped.
package scan

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
)

// MaxFileBytes is the largest file Scan reads.
const MaxFileBytes = 50 << 20

// Kinds of finding.
const (
	// KindKey is an Anthropic API key.
	KindKey = "anthropic-key"
	// KindAdminKey is an Anthropic admin key.
	KindAdminKey = "anthropic-admin-key"
	// KindPublicEnvKey is a browser-exposed variable assigned a key
	// (VITE_ANTHROPIC_API_KEY=sk-ant-...).
	KindPublicEnvKey = "public-env-key"
	// KindPublicEnvName is a browser-exposed variable whose name says it
	// holds an Anthropic or Claude key (process.env.NEXT_PUBLIC_ANTHROPIC_KEY):
	// whatever it holds ships to every browser.
	KindPublicEnvName = "public-env-name"
	// KindSkipped is a file not scanned because it is over MaxFileBytes. It
	// is a note, not a leak.
	KindSkipped = "skipped-too-large"
)

// Finding is one thing found.
type Finding struct {
	File string
	// Line and Column (1-based, Column in bytes) locate the finding in a
	// text file; both are 0 in a binary file.
	Line, Column int
	// Offset is the finding's byte offset in the file.
	Offset int64
	Kind   string
	// Masked shows the finding without the secret: a key as
	// "sk-ant-api03-…WXYZ" (its last 4 characters), a variable by its name.
	Masked string
}

// Leak reports whether the finding is a leak (every kind but KindSkipped).
func (f Finding) Leak() bool { return f.Kind != KindSkipped }

func (f Finding) String() string {
	switch {
	case f.Kind == KindSkipped:
		return fmt.Sprintf("%s: %s", f.File, f.Kind)
	case f.Line > 0:
		return fmt.Sprintf("%s:%d:%d: %s: %s", f.File, f.Line, f.Column, f.Kind, f.Masked)
	default:
		return fmt.Sprintf("%s: offset %d: %s: %s", f.File, f.Offset, f.Kind, f.Masked)
	}
}

var (
	keyRE     = regexp.MustCompile(`sk-ant-[A-Za-z0-9_\-]{20,}`)
	keyTypeRE = regexp.MustCompile(`^sk-ant-[a-z]+[0-9]{2}-`)
	envRE     = regexp.MustCompile(`\b(?:NEXT_PUBLIC_|VITE_|REACT_APP_|EXPO_PUBLIC_)[A-Za-z0-9_]*(?i:ANTHROPIC|CLAUDE)[A-Za-z0-9_]*`)
	// assignRE matches what may sit between a variable's name and its value:
	// NAME=, NAME: "...", "NAME": "...", NAME = `...`.
	assignRE = regexp.MustCompile(`^["']?\s*[:=]\s*["'\x60]?`)
)

// ContainsKey reports whether s holds something shaped like an Anthropic key.
func ContainsKey(s string) bool { return keyRE.MatchString(s) }

// MaskKey shows a key's prefix and type ("sk-ant-api03-") and its last four
// characters only.
func MaskKey(k string) string {
	prefix := "sk-ant-"
	if m := keyTypeRE.FindString(k); m != "" {
		prefix = m
	}
	if len(k) < len(prefix)+8 {
		return prefix + "…"
	}
	return prefix + "…" + k[len(k)-4:]
}

// Scan walks paths (files or directories; symlinked files are read,
// symlinked directories are not followed) and returns the findings sorted by
// file and offset. A path it cannot read is reported in the error, joined
// with the others, and the scan goes on: the findings are valid even when
// the error is not nil.
func Scan(paths []string) ([]Finding, error) {
	var out []Finding
	var errs []error
	for _, root := range paths {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				errs = append(errs, fmt.Errorf("scanning %s: %w", path, err))
				if d != nil && d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			if d.IsDir() {
				return nil
			}
			found, err := scanFile(path)
			if err != nil {
				errs = append(errs, err)
			}
			out = append(out, found...)
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("scanning %s: %w", root, err))
		}
	}
	return out, errors.Join(errs...)
}

func scanFile(path string) ([]Finding, error) {
	fi, err := os.Stat(path) // follows a symlink
	if err != nil {
		return nil, fmt.Errorf("scanning %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, nil
	}
	if fi.Size() > MaxFileBytes {
		return []Finding{{File: path, Kind: KindSkipped}}, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("scanning %s: %w", path, err)
	}
	return scanBytes(path, b), nil
}

// binaryProbe is how much of a file is looked at for a NUL byte, the sign of
// a binary file (git's rule).
const binaryProbe = 8000

// scanBytes finds leaks in one file's content.
func scanBytes(name string, b []byte) []Finding {
	var out []Finding
	used := map[int]bool{} // key offsets already reported through a variable
	for _, m := range envRE.FindAllIndex(b, -1) {
		f := Finding{File: name, Offset: int64(m[0]), Kind: KindPublicEnvName, Masked: string(b[m[0]:m[1]])}
		rest := b[m[1]:min(len(b), m[1]+64)]
		if a := assignRE.Find(rest); a != nil {
			start := m[1] + len(a)
			if k := keyRE.FindIndex(b[start:min(len(b), start+1024)]); k != nil && k[0] == 0 {
				f.Kind = KindPublicEnvKey
				f.Masked += "=" + MaskKey(string(b[start:start+k[1]]))
				used[start] = true
			}
		}
		out = append(out, f)
	}
	for _, m := range keyRE.FindAllIndex(b, -1) {
		if used[m[0]] {
			continue
		}
		k := string(b[m[0]:m[1]])
		kind := KindKey
		if bytes.HasPrefix(b[m[0]:], []byte("sk-ant-admin")) {
			kind = KindAdminKey
		}
		out = append(out, Finding{File: name, Offset: int64(m[0]), Kind: kind, Masked: MaskKey(k)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Offset < out[j].Offset })
	if bytes.IndexByte(b[:min(len(b), binaryProbe)], 0) >= 0 {
		return out
	}
	// Text: add line and column, counting newlines once through the file.
	line, lineStart, pos := 1, 0, 0
	for i := range out {
		off := int(out[i].Offset)
		for {
			nl := bytes.IndexByte(b[pos:off], '\n')
			if nl < 0 {
				break
			}
			line++
			pos += nl + 1
			lineStart = pos
		}
		out[i].Line, out[i].Column = line, off-lineStart+1
	}
	return out
}
