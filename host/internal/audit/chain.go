package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
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

// sealer seals records for the holder of the writer token (not safe for
// concurrent use: it reuses one HMAC state).
type sealer struct {
	mac   hash.Hash
	keyID string
	sum   [sha256.Size]byte
}

func newSealer(k *ChainKey) *sealer { return &sealer{mac: k.recordMAC(), keyID: k.ID()} }

// seal appends the chain fields to body (a JSON object without them) and
// returns the full line with its newline and the line's MAC.
//
// The MAC'd bytes are body with `,"seq":N,"key_id":"K","prev_hash":"P"`
// inserted before its closing brace; the line is those bytes with
// `,"hash":"H"` inserted the same way, H being the hex HMAC-SHA-256 of the
// MAC'd bytes under the chain key.
func (s *sealer) seal(dst, body []byte, seq uint64, prev string) ([]byte, string) {
	start := len(dst)
	dst = append(dst, body[:len(body)-1]...)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"key_id":"`...)
	dst = append(dst, s.keyID...)
	dst = append(dst, `","prev_hash":"`...)
	dst = append(dst, prev...)
	dst = append(dst, `"}`...)
	s.mac.Reset()
	s.mac.Write(dst[start:])
	h := hex.EncodeToString(s.mac.Sum(s.sum[:0]))
	dst = dst[:len(dst)-1] // drop "}"
	dst = append(dst, `,"hash":"`...)
	dst = append(dst, h...)
	dst = append(dst, "\"}\n"...)
	return dst, h
}

// chainFields are the parts of a line Verify needs.
type chainFields struct {
	Seq      *uint64 `json:"seq"`
	KeyID    *string `json:"key_id"`
	PrevHash *string `json:"prev_hash"`
	Hash     *string `json:"hash"`
}

// lineInfo is a parsed line; kind is "" when the line is intact.
type lineInfo struct {
	seq uint64
	// keyed is true for a record sealed with the chain key (format 2),
	// false for the old plain SHA-256 format (format 1).
	keyed  bool
	prev   string
	hash   string
	kind   string
	detail string
}

// lineParser checks lines against one chain key (not safe for concurrent
// use).
type lineParser struct {
	key    *ChainKey
	mac    hash.Hash
	sum    [sha256.Size]byte
	hashed []byte
}

func newLineParser(k *ChainKey) *lineParser { return &lineParser{key: k, mac: k.recordMAC()} }

// parse checks one line (without its newline). A keyed record must carry
// this parser's key id and MAC; a record without key_id is checked as the
// old plain SHA-256 format and reported with keyed false (Verify decides
// whether it is acceptable where it stands).
func (p *lineParser) parse(line []byte) lineInfo {
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
	hashed := append(p.hashed[:0], line[:len(line)-hashSuffixLen]...)
	hashed = append(hashed, '}')
	if cap(hashed) <= 1<<20 {
		p.hashed = hashed
	}
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
	li := lineInfo{seq: *cf.Seq, prev: *cf.PrevHash, hash: stated, keyed: cf.KeyID != nil}
	var got []byte
	if li.keyed {
		if *cf.KeyID != p.key.ID() {
			li.kind, li.detail = KindWrongKey, fmt.Sprintf("sealed with chain key id %q, but the configured key's id is %q (wrong key, or a forged record)", *cf.KeyID, p.key.ID())
			return li
		}
		p.mac.Reset()
		p.mac.Write(hashed)
		got = p.mac.Sum(p.sum[:0])
	} else {
		p.sum = sha256.Sum256(hashed)
		got = p.sum[:]
	}
	var want [sha256.Size]byte
	if _, err := hex.Decode(want[:], []byte(stated)); err != nil || !hmac.Equal(got, want[:]) {
		li.kind = KindEdited
		li.detail = "record content does not match its hash (the line was changed after it was written)"
		if li.keyed {
			li.detail = "record content does not match its keyed hash (the line was changed after it was written, by someone without the chain key)"
		}
	}
	return li
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
func chainHead(path string, p *lineParser) (li lineInfo, ok bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return li, false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return li, false, err
	}
	if !st.Mode().IsRegular() || st.Size() == 0 {
		return li, false, nil
	}
	line, err := lastLine(f, st.Size())
	if err != nil {
		return li, false, fmt.Errorf("reading the end of %s: %w", path, err)
	}
	li = p.parse(line)
	switch li.kind {
	case "":
		return li, true, nil
	case KindWrongKey:
		return li, false, fmt.Errorf("%w: %s: the last record was %s; to start a new chain with this key, move the trail and its checkpoint file aside", ErrCorruptTail, path, li.detail)
	}
	return li, false, fmt.Errorf("%w: %s: %s (run `moat audit verify`)", ErrCorruptTail, path, li.detail)
}
