package audit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
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
	// KindWrongKey: a record names another chain key than the one given.
	KindWrongKey = "wrong_key"
	// KindDowngraded: a record in the old unkeyed format follows keyed
	// records (someone without the key re-hashed it with plain SHA-256).
	KindDowngraded = "downgraded"
	// KindUnauthenticated: no record is sealed with the chain key, so
	// nothing proves the trail was not rewritten.
	KindUnauthenticated = "unauthenticated"
	// KindCutHead: the trail does not start at seq 1 (and no FromSeq says
	// where it may start).
	KindCutHead = "cut_head"
	// KindCutTail: the trail ends before the latest checkpoint.
	KindCutTail = "cut_tail"
	// KindCheckpointMismatch: the record at a checkpoint's seq is not the
	// one the checkpoint names.
	KindCheckpointMismatch = "checkpoint_mismatch"
	// KindNoCheckpoint: a checkpoint is required and none was found.
	KindNoCheckpoint = "no_checkpoint"
	// KindBadCheckpoint: a stored checkpoint is malformed, altered or
	// MAC'd with another key.
	KindBadCheckpoint = "bad_checkpoint"
)

// Problem is the first place where a chain does not hold.
type Problem struct {
	File string
	// Line is 1-based within File; 0 when the problem is about the file
	// (or the trail) as a whole.
	Line int
	// Seq is the record's sequence number, 0 when unreadable.
	Seq    uint64
	Kind   string
	Detail string
}

// String formats the problem as "file:line: seq N: kind: detail".
func (p *Problem) String() string {
	loc := p.File
	if p.Line > 0 {
		loc = fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	if p.Seq > 0 {
		return fmt.Sprintf("%s: seq %d: %s: %s", loc, p.Seq, p.Kind, p.Detail)
	}
	return fmt.Sprintf("%s: %s: %s", loc, p.Kind, p.Detail)
}

// SourcedCheckpoint is an authenticated checkpoint and where it was read.
type SourcedCheckpoint struct {
	Checkpoint
	// From names the store ("file /var/lib/moat/.moat-audit-checkpoint").
	From string
}

// VerifyOptions say what Verify checks.
type VerifyOptions struct {
	// Files are the trail's files in chain order (see Files).
	Files []string
	// Key is the chain key; required.
	Key *ChainKey
	// Checkpoints are authenticated checkpoints (see ParseCheckpoint), or
	// ones the operator supplies (then Head may be a prefix of at least 12
	// hex digits, as on the metrics page); the record at each one's seq
	// must be the one it names, and the trail must reach the highest
	// one's seq.
	Checkpoints []SourcedCheckpoint
	// RequireCheckpoint fails a non-empty trail without checkpoints.
	RequireCheckpoint bool
	// FromSeq accepts a trail starting at that seq (older records removed
	// on purpose); 0 requires the trail to start at seq 1.
	FromSeq uint64
}

// Report is the outcome of Verify.
type Report struct {
	// Files are the files checked, in order.
	Files []string
	// Records counts lines read, intact or not; Keyed and Legacy count the
	// intact records sealed with the chain key and in the old plain
	// SHA-256 format.
	Records, Keyed, Legacy int
	// FirstSeq and LastSeq bound the records read; LastHash is the hash of
	// the last intact record before any problem.
	FirstSeq, LastSeq uint64
	LastHash          string
	// Anchored is true when the trail starts at FromSeq instead of seq 1.
	Anchored bool
	// Checkpoint is the latest checkpoint compared, nil if none;
	// AfterCheckpoint counts the records after it.
	Checkpoint      *SourcedCheckpoint
	AfterCheckpoint uint64
	// Notes are human-readable remarks (anchoring, old format, stores).
	Notes []string
	// Problem is the first break found, nil when the chain holds.
	Problem *Problem
	// Elapsed is the time Verify took.
	Elapsed time.Duration
}

// OK reports whether the chain holds.
func (r Report) OK() bool { return r.Problem == nil }

// RecordsPerSecond is the verification speed.
func (r Report) RecordsPerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Records) / r.Elapsed.Seconds()
}

// entry is one line of the files being verified.
type entry struct {
	file int
	line int
	lineInfo
}

// Verify checks the keyed hash chain over o.Files, in order, and the trail
// against o.Checkpoints. It fails, with an error wrapping ErrChainBroken
// and the Report's Problem set, on the first record that was edited,
// deleted, inserted, reordered, sealed with another key or re-hashed in
// the old unkeyed format after keyed records; when the trail does not
// start at seq 1 (or o.FromSeq); when it ends before a checkpoint or
// differs from one; and when no record is keyed. Records in the old format
// are accepted only before the first keyed record, whose MAC covers the
// link to them. Verify never panics on arbitrary file contents.
func Verify(o VerifyOptions) (rep Report, err error) {
	began := time.Now()
	defer func() { rep.Elapsed = time.Since(began) }()
	files := o.Files
	rep.Files = files
	if len(files) == 0 {
		return rep, errors.New("verifying audit log: no files given")
	}
	if o.Key == nil {
		return rep, errors.New("verifying audit log: no chain key given")
	}
	p := newLineParser(o.Key)
	var entries []entry
	for fi, name := range files {
		n, err := readEntries(name, fi, p, &entries)
		if err != nil {
			return rep, fmt.Errorf("verifying audit log: %w", err)
		}
		if n == 0 {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s holds no records", name))
		}
	}
	rep.Records = len(entries)
	last := files[len(files)-1]
	whole := func(kind, detail string) (Report, error) {
		rep.Problem = &Problem{File: last, Kind: kind, Detail: detail}
		if len(entries) > 0 {
			e := entries[len(entries)-1]
			rep.Problem.File, rep.Problem.Line, rep.Problem.Seq = files[e.file], e.line, e.seq
		}
		return rep, fmt.Errorf("%w: %s", ErrChainBroken, rep.Problem)
	}
	if len(entries) == 0 {
		for _, cp := range o.Checkpoints {
			if cp.Seq > 0 {
				return whole(KindCutTail, fmt.Sprintf("the trail is empty, but the checkpoint of %s (%s) says it reached seq %d: every record was cut",
					cp.Time.Format(time.RFC3339), cp.From, cp.Seq))
			}
		}
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
		if e.keyed {
			rep.Keyed++
		} else {
			if rep.Keyed > 0 {
				return fail(i, KindDowngraded, "a record in the old unkeyed format (plain SHA-256) after keyed records: it was re-hashed by someone without the chain key")
			}
			rep.Legacy++
		}
		if i == 0 {
			switch {
			case e.seq == 1 && e.prev == GenesisHash:
			case e.seq == 1 || e.prev == GenesisHash:
				return fail(i, KindEdited, "only the first record (seq 1) links to the genesis hash")
			case o.FromSeq != 0 && e.seq == o.FromSeq:
				rep.Anchored = true
				rep.Notes = append(rep.Notes, fmt.Sprintf(
					"%s starts at seq %d as allowed (from-seq): its prev_hash %s was accepted as the anchor; records before it were not checked",
					at(0), e.seq, e.prev))
			case o.FromSeq != 0:
				return fail(i, KindCutHead, fmt.Sprintf("the trail starts at seq %d, not at the allowed seq %d", e.seq, o.FromSeq))
			default:
				return fail(i, KindCutHead, fmt.Sprintf(
					"the trail starts at seq %d: records 1 to %d are missing (its head was cut, or older rotated files were removed; if they were removed on purpose, allow it with from-seq %d)",
					e.seq, e.seq-1, e.seq))
			}
			rep.LastHash = e.hash
			continue
		}
		pr := entries[i-1]
		want := pr.seq + 1
		switch {
		case e.prev == pr.hash && e.seq == want:
			rep.LastHash = e.hash
			continue
		case e.prev == pr.hash:
			return fail(i, KindEdited, fmt.Sprintf("links to seq %d at %s but is numbered %d", pr.seq, at(i-1), e.seq))
		case e.seq == want:
			return fail(i-1, KindEdited, fmt.Sprintf(
				"its hash does not match the prev_hash stored by the next record (%s): this record was replaced, or the next one forged", at(i)))
		case e.seq <= pr.seq:
			if j := firstAt[e.seq]; j < i {
				return fail(i, KindInserted, fmt.Sprintf("seq %d was already seen at %s; a record was inserted or replayed here", e.seq, at(j)))
			}
			return fail(i, KindInserted, fmt.Sprintf("seq %d does not follow seq %d at %s", e.seq, pr.seq, at(i-1)))
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
	if rep.Keyed == 0 {
		return whole(KindUnauthenticated, fmt.Sprintf(
			"all %d records use the old unkeyed format (plain SHA-256), which anyone able to write the file can re-forge; start this moat version on the trail once to seal it with keyed records, then verify again", rep.Legacy))
	}
	if rep.Legacy > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf(
			"records %d to %d use the old unkeyed format; the keyed record after them seals their content as it was when this moat version first ran, not before",
			rep.FirstSeq, rep.FirstSeq+uint64(rep.Legacy)-1))
	}
	// The chain is contiguous from FirstSeq to LastSeq here.
	for _, cp := range o.Checkpoints {
		switch {
		case cp.Seq > rep.LastSeq:
			return whole(KindCutTail, fmt.Sprintf(
				"the checkpoint of %s (%s) says the trail reached seq %d, but it ends at seq %d: records %d to %d were cut from its end",
				cp.Time.Format(time.RFC3339), cp.From, cp.Seq, rep.LastSeq, rep.LastSeq+1, cp.Seq))
		case cp.Seq == 0:
		case cp.Seq < rep.FirstSeq:
			rep.Notes = append(rep.Notes, fmt.Sprintf("the checkpoint in %s (seq %d) precedes the first record checked; not compared", cp.From, cp.Seq))
			continue
		default:
			if i := int(cp.Seq - rep.FirstSeq); len(cp.Head) < 12 || !strings.HasPrefix(entries[i].hash, cp.Head) {
				return fail(i, KindCheckpointMismatch, fmt.Sprintf(
					"the checkpoint of %s (%s) names another record at this seq: the trail was rewritten from here (with the chain key) or the checkpoint belongs to another trail",
					cp.Time.Format(time.RFC3339), cp.From))
			}
		}
		if rep.Checkpoint == nil || cp.Seq > rep.Checkpoint.Seq || (cp.Seq == rep.Checkpoint.Seq && cp.Time.After(rep.Checkpoint.Time)) {
			c := cp
			rep.Checkpoint = &c
		}
	}
	if rep.Checkpoint == nil {
		if o.RequireCheckpoint {
			return whole(KindNoCheckpoint, "no checkpoint was found, so a cut of the trail's end cannot be ruled out (moat writes one at start, every checkpoint_interval and at shutdown: it was deleted, or the trail was moved here)")
		}
		return rep, nil
	}
	rep.AfterCheckpoint = rep.LastSeq - rep.Checkpoint.Seq
	return rep, nil
}

// maxVerifyLine bounds one line read by Verify.
const maxVerifyLine = 512 << 20

// readEntries appends the lines of one file to entries.
func readEntries(name string, fi int, p *lineParser, entries *[]entry) (int, error) {
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
			li = p.parse(bytes.TrimSuffix(line, []byte("\n")))
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
