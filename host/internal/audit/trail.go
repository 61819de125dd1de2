package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// TrailOptions adjust VerifyTrail.
type TrailOptions struct {
	// Files overrides the files verified (default: Files(cfg.Path)), for
	// a trail moved away or rotated by another tool.
	Files []string
	// FromSeq accepts a trail starting at that seq (see VerifyOptions).
	FromSeq uint64
	// Stores are checkpoint stores besides the checkpoint file (Redis).
	Stores []CheckpointStore
	// Expect are checkpoints from elsewhere (a scraped metrics history:
	// audit_checkpoint_seq and audit_checkpoint_head_prefix), trusted as
	// given; see ParseExpect.
	Expect []SourcedCheckpoint
}

// ParseExpect parses "SEQ:HEAD" (HEAD: at least 12 hex digits of the head
// hash, or "=" and the decimal value of audit_checkpoint_head_prefix as
// the metrics page shows it; "=" because a hex head may start with any
// hex digit, so a letter would be ambiguous).
func ParseExpect(s string) (SourcedCheckpoint, error) {
	seqs, head, ok := strings.Cut(s, ":")
	seq, err := strconv.ParseUint(seqs, 10, 64)
	if !ok || err != nil {
		return SourcedCheckpoint{}, fmt.Errorf("checkpoint %q: want SEQ:HEXPREFIX or SEQ:=DECIMAL", s)
	}
	if d, isDec := strings.CutPrefix(head, "="); isDec {
		v, err := strconv.ParseUint(d, 10, 64)
		if err != nil || v >= 1<<48 {
			return SourcedCheckpoint{}, fmt.Errorf("checkpoint %q: the decimal head prefix must be below 2^48", s)
		}
		head = fmt.Sprintf("%012x", v)
	}
	head = strings.ToLower(head)
	if len(head) < 12 || len(head) > 64 || strings.Trim(head, "0123456789abcdef") != "" {
		return SourcedCheckpoint{}, fmt.Errorf("checkpoint %q: the head must be 12 to 64 hex digits", s)
	}
	return SourcedCheckpoint{Checkpoint: Checkpoint{Seq: seq, Head: head}, From: "--checkpoint " + s}, nil
}

// VerifyTrail verifies the trail configured by cfg the way `moat audit
// verify --config` does: the chain with the chain key (never created
// here), and the trail against the checkpoints of the checkpoint file and
// o.Stores, one of which is required. A store that cannot be read is
// noted; a checkpoint that does not authenticate is a Problem
// (KindBadCheckpoint).
func VerifyTrail(ctx context.Context, cfg Config, o TrailOptions) (Report, error) {
	began := time.Now()
	var rep Report
	key, _, err := LoadChainKey(cfg, false)
	if err != nil {
		return rep, fmt.Errorf("verifying audit log: %w", err)
	}
	files := o.Files
	if len(files) == 0 {
		if files, err = Files(cfg.Path); err != nil {
			return rep, fmt.Errorf("verifying audit log: %w", err)
		}
		if len(files) == 0 {
			return rep, fmt.Errorf("verifying audit log: no audit file at %s", cfg.Path)
		}
	}
	stores := append([]CheckpointStore{FileStore{Path: checkpointPath(cfg)}}, o.Stores...)
	cps, skipped, err := loadCheckpoints(ctx, stores, key)
	var notes []string
	for _, s := range skipped {
		notes = append(notes, "checkpoint store not read: "+s)
	}
	if err != nil {
		rep.Files = files
		rep.Notes = notes
		rep.Problem = &Problem{File: checkpointPath(cfg), Kind: KindBadCheckpoint, Detail: err.Error()}
		if errors.Is(err, ErrBadCheckpoint) {
			return rep, fmt.Errorf("%w: %s", ErrChainBroken, rep.Problem)
		}
		return rep, fmt.Errorf("verifying audit log: %w", err)
	}
	abs, _ := filepath.Abs(cfg.Path)
	var scs []SourcedCheckpoint
	for _, cp := range cps {
		if cp.Log != abs {
			notes = append(notes, fmt.Sprintf("the checkpoint in %s was written for %s", cp.from, cp.Log))
		}
		scs = append(scs, SourcedCheckpoint{Checkpoint: cp.Checkpoint, From: cp.from})
	}
	scs = append(scs, o.Expect...)
	rep, err = Verify(VerifyOptions{Files: files, Key: key, Checkpoints: scs, RequireCheckpoint: true, FromSeq: o.FromSeq})
	rep.Notes = append(notes, rep.Notes...)
	rep.Elapsed = time.Since(began)
	return rep, err
}

// Reseal writes a checkpoint for the current end of the trail configured
// by cfg after verifying its chain (checkpoints aside: a cut cannot be
// told from a deliberate removal at this point, which is why this is an
// operator's decision). It is the way out after Open refused a trail
// whose checkpoint was lost or no longer matches, once the operator knows
// why. It must not run while moat serves the same trail.
func Reseal(ctx context.Context, cfg Config, o TrailOptions) (Checkpoint, Report, error) {
	key, _, err := LoadChainKey(cfg, false)
	if err != nil {
		return Checkpoint{}, Report{}, fmt.Errorf("resealing audit log: %w", err)
	}
	files, err := Files(cfg.Path)
	if err != nil {
		return Checkpoint{}, Report{}, fmt.Errorf("resealing audit log: %w", err)
	}
	cp := Checkpoint{Head: GenesisHash, Time: time.Now().UTC(), KeyID: key.ID()}
	cp.Log, _ = filepath.Abs(cfg.Path)
	var rep Report
	if len(files) > 0 {
		rep, err = Verify(VerifyOptions{Files: files, Key: key, FromSeq: o.FromSeq})
		if err != nil {
			return Checkpoint{}, rep, fmt.Errorf("resealing audit log: %w", err)
		}
		cp.Seq, cp.Head = rep.LastSeq, rep.LastHash
	}
	line := MarshalCheckpoint(cp, key)
	for _, st := range append([]CheckpointStore{FileStore{Path: checkpointPath(cfg)}}, o.Stores...) {
		if err := st.Save(ctx, line); err != nil {
			return Checkpoint{}, rep, fmt.Errorf("resealing audit log: saving to %s: %w", st.Name(), err)
		}
	}
	return cp, rep, nil
}

// WriteReport prints rep and err the way `moat audit verify` does: what
// was checked and how fast, the checkpoint compared, notes, then "ok" or
// "FAIL" with the first problem and what it means.
func WriteReport(w io.Writer, rep Report, err error) {
	if rep.Records > 0 || len(rep.Files) > 0 {
		fmt.Fprintf(w, "checked %d records in %d file(s), seq %d..%d (%d keyed, %d in the old unkeyed format) in %s (%.0f records/s)\n",
			rep.Records, len(rep.Files), rep.FirstSeq, rep.LastSeq, rep.Keyed, rep.Legacy,
			rep.Elapsed.Round(time.Microsecond), rep.RecordsPerSecond())
	}
	if cp := rep.Checkpoint; cp != nil {
		fmt.Fprintf(w, "checkpoint: seq %d of %s (%s) matches the trail; %d record(s) after it\n",
			cp.Seq, cp.Time.Format(time.RFC3339), cp.From, rep.AfterCheckpoint)
	}
	for _, n := range rep.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	switch {
	case rep.Problem != nil:
		fmt.Fprintf(w, "FAIL %s\n", rep.Problem)
		if why := kindMeaning[rep.Problem.Kind]; why != "" {
			fmt.Fprintln(w, "what it means:", why)
		}
	case err != nil:
		fmt.Fprintf(w, "FAIL %v\n", err)
	default:
		fmt.Fprintln(w, "ok: every record is keyed and linked, and the trail reaches its latest checkpoint")
	}
}

// kindMeaning explains each problem kind to an operator.
var kindMeaning = map[string]string{
	KindMalformed:          "a line is not a record: a torn write (crash during a write), or a line edited by hand",
	KindEdited:             "a record was changed after it was written, or its link was; only the chain key can produce a matching hash",
	KindDeleted:            "records were removed from the middle of the trail",
	KindInserted:           "a record appears twice or out of sequence: inserted or replayed",
	KindReordered:          "records were moved",
	KindWrongKey:           "the record names another chain key: the wrong key was given, or the record was forged with another key",
	KindDowngraded:         "someone without the chain key rewrote records and re-hashed them with plain SHA-256",
	KindUnauthenticated:    "no record is keyed, so nothing proves the trail was not rewritten",
	KindCutHead:            "the first records of the trail are missing",
	KindCutTail:            "the last records of the trail are missing: the checkpoint, kept outside the log, saw more",
	KindCheckpointMismatch: "the trail and the checkpoint disagree about a record: the trail was rewritten by a holder of the chain key, or the checkpoint belongs to another trail",
	KindNoCheckpoint:       "the checkpoint, kept outside the log, is gone, so a cut of the trail's end cannot be ruled out",
	KindBadCheckpoint:      "the stored checkpoint was altered, forged, or made with another key",
}
