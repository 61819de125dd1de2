package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// GenesisHash is the PrevHash of the first record of a chain.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// rotatedLayout names rotated files: path + "." + UTC time in this layout.
// Its fixed width makes lexical order chronological.
const rotatedLayout = "20060102T150405.000000000Z"

// hashSuffixLen is len(`,"hash":"` + 64 hex + `"}`).
const hashSuffixLen = len(`,"hash":"`) + 64 + len(`"}`)

// seal appends the chain fields to body (a JSON object without them) and
// returns the full line with its newline and the line's hash.
//
// The hashed bytes are body with `,"seq":N,"prev_hash":"P"` inserted before
// its closing brace; the line is those bytes with `,"hash":"H"` inserted the
// same way.
func seal(dst, body []byte, seq uint64, prev string) ([]byte, string) {
	start := len(dst)
	dst = append(dst, body[:len(body)-1]...)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"prev_hash":"`...)
	dst = append(dst, prev...)
	dst = append(dst, `"}`...)
	sum := sha256.Sum256(dst[start:])
	h := hex.EncodeToString(sum[:])
	dst = dst[:len(dst)-1] // drop "}"
	dst = append(dst, `,"hash":"`...)
	dst = append(dst, h...)
	dst = append(dst, "\"}\n"...)
	return dst, h
}

// chainFields are the parts of a line Verify needs.
type chainFields struct {
	Seq      *uint64 `json:"seq"`
	PrevHash *string `json:"prev_hash"`
	Hash     *string `json:"hash"`
}

// lineInfo is a parsed line; kind is "" when the line is intact.
type lineInfo struct {
	seq    uint64
	prev   string
	hash   string
	kind   string
	detail string
}

// parseLine checks one line (without its newline).
func parseLine(line []byte) lineInfo {
	if len(line) < hashSuffixLen+2 {
		return lineInfo{kind: KindMalformed, detail: "line too short to be a record"}
	}
	suffix := line[len(line)-hashSuffixLen:]
	if !bytes.HasPrefix(suffix, []byte(`,"hash":"`)) || !bytes.HasSuffix(suffix, []byte(`"}`)) {
		return lineInfo{kind: KindMalformed, detail: `line does not end with a "hash" field`}
	}
	stated := string(suffix[len(`,"hash":"`) : len(`,"hash":"`)+64])
	if !isHex64(stated) {
		return lineInfo{kind: KindMalformed, detail: "hash is not 64 lowercase hex digits"}
	}
	hashed := make([]byte, 0, len(line)-hashSuffixLen+1)
	hashed = append(hashed, line[:len(line)-hashSuffixLen]...)
	hashed = append(hashed, '}')
	var cf chainFields
	if err := json.Unmarshal(hashed, &cf); err != nil {
		return lineInfo{kind: KindMalformed, detail: "not a JSON object: " + err.Error()}
	}
	if cf.Seq == nil || *cf.Seq == 0 || cf.PrevHash == nil {
		return lineInfo{kind: KindMalformed, detail: "missing seq or prev_hash"}
	}
	if cf.Hash != nil {
		return lineInfo{kind: KindMalformed, detail: "more than one hash field"}
	}
	if !isHex64(*cf.PrevHash) {
		return lineInfo{kind: KindMalformed, seq: *cf.Seq, detail: "prev_hash is not 64 lowercase hex digits"}
	}
	sum := sha256.Sum256(hashed)
	if got := hex.EncodeToString(sum[:]); got != stated {
		return lineInfo{kind: KindEdited, seq: *cf.Seq, prev: *cf.PrevHash, hash: stated,
			detail: "record content does not match its hash (the line was changed after it was written)"}
	}
	return lineInfo{seq: *cf.Seq, prev: *cf.PrevHash, hash: stated}
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Files returns the audit files of path in chain order: rotated files
// (path + "." + UTC timestamp), oldest first, then path itself if it exists.
func Files(path string) ([]string, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("listing audit files: %w", err)
	}
	var rotated []string
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, base+".") || e.IsDir() {
			continue
		}
		if _, err := time.Parse(rotatedLayout, name[len(base)+1:]); err != nil {
			continue
		}
		rotated = append(rotated, filepath.Join(dir, name))
	}
	sort.Strings(rotated)
	if _, err := os.Stat(path); err == nil {
		rotated = append(rotated, path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("listing audit files: %w", err)
	}
	return rotated, nil
}

// maxTailRecord bounds how far back Open reads to find the last record.
const maxTailRecord = 512 << 20

// lastLine returns the last line of the first size bytes of r, without its
// newline. It fails when the data does not end with a newline.
func lastLine(r io.ReaderAt, size int64) ([]byte, error) {
	if size == 0 {
		return nil, nil
	}
	var last [1]byte
	if _, err := r.ReadAt(last[:], size-1); err != nil {
		return nil, err
	}
	if last[0] != '\n' {
		return nil, fmt.Errorf("%w: last line is incomplete (torn write?)", ErrCorruptTail)
	}
	end := size - 1
	const chunk = 64 << 10
	var buf []byte
	pos := end
	for pos > 0 {
		n := int64(chunk)
		if n > pos {
			n = pos
		}
		if end-(pos-n) > maxTailRecord {
			return nil, fmt.Errorf("%w: last record is larger than %d bytes", ErrCorruptTail, maxTailRecord)
		}
		b := make([]byte, n)
		if _, err := r.ReadAt(b, pos-n); err != nil {
			return nil, err
		}
		buf = append(b, buf...)
		pos -= n
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			return buf[i+1:], nil
		}
	}
	return buf, nil
}

// chainHead reads the last record of an audit file.
func chainHead(path string) (seq uint64, hash string, ok bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, "", false, err
	}
	if !st.Mode().IsRegular() || st.Size() == 0 {
		return 0, "", false, nil
	}
	line, err := lastLine(f, st.Size())
	if err != nil {
		return 0, "", false, fmt.Errorf("reading the end of %s: %w", path, err)
	}
	li := parseLine(line)
	if li.kind != "" {
		return 0, "", false, fmt.Errorf("%w: %s: %s (run `moat audit verify`)", ErrCorruptTail, path, li.detail)
	}
	return li.seq, li.hash, true, nil
}
