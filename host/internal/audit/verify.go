package audit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// Problem kinds reported by Verify.
const (
	// KindMalformed: the line is not a record (bad JSON, no hash, torn).
	KindMalformed = "malformed"
	// KindEdited: a record's content or its link was changed.
	KindEdited = "edited"
	// KindDeleted: records are missing from the chain.
	KindDeleted = "deleted"
	// KindInserted: a record repeats or precedes an already seen sequence
	// number (inserted or replayed).
	KindInserted = "inserted"
	// KindReordered: a record appears before records that precede it.
	KindReordered = "reordered"
)

// Problem is the first place where a chain does not hold.
type Problem struct {
	File string
	// Line is 1-based within File.
	Line int
	// Seq is the record's sequence number, 0 when unreadable.
	Seq    uint64
	Kind   string
	Detail string
}

// String formats the problem as "file:line: seq N: kind: detail".
func (p *Problem) String() string {
	if p.Seq > 0 {
		return fmt.Sprintf("%s:%d: seq %d: %s: %s", p.File, p.Line, p.Seq, p.Kind, p.Detail)
	}
	return fmt.Sprintf("%s:%d: %s: %s", p.File, p.Line, p.Kind, p.Detail)
}

// Report is the outcome of Verify.
type Report struct {
	// Files are the files checked, in order.
	Files []string
	// Records counts lines read, intact or not.
	Records int
	// FirstSeq and LastSeq bound the records read; LastHash is the hash of
	// the last intact record before any problem.
	FirstSeq, LastSeq uint64
	LastHash          string
	// Anchored is true when the first record does not start the chain
	// (seq 1 linked to GenesisHash): its prev_hash was accepted as the
	// anchor and the records before it were not checked.
	Anchored bool
	// Notes are human-readable remarks (anchoring, empty files).
	Notes []string
	// Problem is the first break found, nil when the chain holds.
	Problem *Problem
}

// OK reports whether the chain holds.
func (r Report) OK() bool { return r.Problem == nil }

// entry is one line of the files being verified.
type entry struct {
	file int
	line int
	lineInfo
}

// Verify checks the hash chain over files, in the order given (as listed by
// Files for one trail). A file may start mid-chain (a rotated file checked
// alone); Verify then accepts its first prev_hash as the anchor and says so
// in the Report. It returns an error wrapping ErrChainBroken with the first
// edited, deleted, inserted or reordered record, or a read error. Verify
// never panics on arbitrary file contents.
func Verify(files ...string) (Report, error) {
	rep := Report{Files: files}
	if len(files) == 0 {
		return rep, errors.New("verifying audit log: no files given")
	}
	var entries []entry
	for fi, name := range files {
		n, err := readEntries(name, fi, &entries)
		if err != nil {
			return rep, fmt.Errorf("verifying audit log: %w", err)
		}
		if n == 0 {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s holds no records", name))
		}
	}
	rep.Records = len(entries)
	if len(entries) == 0 {
		return rep, nil
	}
	// firstAt maps a seq to the index of its first intact entry.
	firstAt := make(map[uint64]int, len(entries))
	for i, e := range entries {
		if e.kind == "" {
			if _, ok := firstAt[e.seq]; !ok {
				firstAt[e.seq] = i
			}
		}
	}
	at := func(i int) string {
		return fmt.Sprintf("%s:%d", files[entries[i].file], entries[i].line)
	}
	fail := func(i int, kind, detail string) (Report, error) {
		e := entries[i]
		rep.Problem = &Problem{File: files[e.file], Line: e.line, Seq: e.seq, Kind: kind, Detail: detail}
		return rep, fmt.Errorf("%w: %s", ErrChainBroken, rep.Problem)
	}
	rep.FirstSeq = entries[0].seq
	for i, e := range entries {
		rep.LastSeq = max(rep.LastSeq, e.seq)
		if e.kind != "" {
			return fail(i, e.kind, e.detail)
		}
		if i == 0 {
			switch {
			case e.seq == 1 && e.prev == GenesisHash:
			case e.seq == 1 || e.prev == GenesisHash:
				return fail(i, KindEdited, "only the first record (seq 1) links to the genesis hash")
			default:
				rep.Anchored = true
				rep.Notes = append(rep.Notes, fmt.Sprintf(
					"%s starts mid-chain at seq %d: its prev_hash %s was accepted as the anchor; records before it were not checked",
					at(0), e.seq, e.prev))
			}
			rep.LastHash = e.hash
			continue
		}
		p := entries[i-1]
		want := p.seq + 1
		switch {
		case e.prev == p.hash && e.seq == want:
			rep.LastHash = e.hash
			continue
		case e.prev == p.hash:
			return fail(i, KindEdited, fmt.Sprintf("links to seq %d at %s but is numbered %d", p.seq, at(i-1), e.seq))
		case e.seq == want:
			return fail(i-1, KindEdited, fmt.Sprintf(
				"its hash does not match the prev_hash stored by the next record (%s): this record was replaced, or the next one forged", at(i)))
		case e.seq <= p.seq:
			if j := firstAt[e.seq]; j < i {
				return fail(i, KindInserted, fmt.Sprintf("seq %d was already seen at %s; a record was inserted or replayed here", e.seq, at(j)))
			}
			return fail(i, KindInserted, fmt.Sprintf("seq %d does not follow seq %d at %s", e.seq, p.seq, at(i-1)))
		default:
			if j, ok := firstAt[want]; ok && j > i {
				return fail(i, KindReordered, fmt.Sprintf("expected seq %d after %s, found seq %d; seq %d appears later at %s", want, at(i-1), e.seq, want, at(j)))
			}
			for j := i + 1; j < len(entries); j++ {
				if s := entries[j].seq; entries[j].kind == "" && s > want && s < e.seq {
					return fail(i, KindInserted, fmt.Sprintf("seq %d is out of place: seq %d was expected after %s and seq %d follows at %s", e.seq, want, at(i-1), s, at(j)))
				}
			}
			if e.seq-want == 1 {
				return fail(i, KindDeleted, fmt.Sprintf("record seq %d is missing before this one", want))
			}
			return fail(i, KindDeleted, fmt.Sprintf("records seq %d to %d are missing before this one", want, e.seq-1))
		}
	}
	return rep, nil
}

// maxVerifyLine bounds one line read by Verify.
const maxVerifyLine = 512 << 20

// readEntries appends the lines of one file to entries.
func readEntries(name string, fi int, entries *[]entry) (int, error) {
	f, err := os.Open(name)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 256<<10)
	n := 0
	for lineNo := 1; ; lineNo++ {
		line, tooLong, err := readLine(br)
		if len(line) == 0 && !tooLong && err == io.EOF {
			return n, nil
		}
		if err != nil && err != io.EOF {
			return n, fmt.Errorf("reading %s: %w", name, err)
		}
		n++
		var li lineInfo
		switch {
		case tooLong:
			li = lineInfo{kind: KindMalformed, detail: fmt.Sprintf("line longer than %d bytes", maxVerifyLine)}
		case err == io.EOF:
			li = lineInfo{kind: KindMalformed, detail: "last line has no newline (torn or truncated write)"}
		default:
			li = parseLine(bytes.TrimSuffix(line, []byte("\n")))
		}
		*entries = append(*entries, entry{file: fi, line: lineNo, lineInfo: li})
		if err == io.EOF {
			return n, nil
		}
	}
}

// readLine reads up to and including '\n'. Past maxVerifyLine it discards
// the rest of the line and reports tooLong.
func readLine(br *bufio.Reader) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if !tooLong && len(line)+len(chunk) <= maxVerifyLine {
			line = append(line, chunk...)
		} else {
			tooLong, line = true, nil
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		return line, tooLong, err
	}
}
