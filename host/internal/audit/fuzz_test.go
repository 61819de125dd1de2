package audit

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// fuzzKey is a fixed chain key so seeds can hold keyed records.
func fuzzKey(t testing.TB) *ChainKey {
	k, err := NewChainKey([]byte("fuzz-chain-key-0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// FuzzVerify feeds arbitrary bytes to Verify, as one file and split into two
// files, with and without a checkpoint. Verify must not panic, and must
// report a problem exactly when it returns ErrChainBroken.
func FuzzVerify(f *testing.F) {
	f.Add([]byte(""), uint16(0))
	f.Add([]byte("\n\n"), uint16(1))
	f.Add([]byte(`{"seq":1,"prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","hash":"00"}`+"\n"), uint16(3))
	// A keyed trail of three records, sealed with the fuzz key.
	s := newSealer(fuzzKey(f))
	var trail []byte
	prev := GenesisHash
	for i := uint64(1); i <= 3; i++ {
		trail, prev = s.seal(trail, []byte(`{"request_id":"r","status":200}`), i, prev)
	}
	f.Add(trail, uint16(len(trail)/2))
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		k := fuzzKey(t)
		dir := t.TempDir()
		one := filepath.Join(dir, "one")
		if err := os.WriteFile(one, data, 0o600); err != nil {
			t.Fatal(err)
		}
		check(t, VerifyOptions{Files: []string{one}, Key: k})
		cp := SourcedCheckpoint{Checkpoint: Checkpoint{Seq: 2, Head: prev, Time: time.Unix(0, 0)}, From: "fuzz"}
		check(t, VerifyOptions{Files: []string{one}, Key: k, Checkpoints: []SourcedCheckpoint{cp}, RequireCheckpoint: true})
		cut := int(split)
		if cut > len(data) {
			cut = len(data)
		}
		a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
		os.WriteFile(a, data[:cut], 0o600)
		os.WriteFile(b, data[cut:], 0o600)
		check(t, VerifyOptions{Files: []string{a, b}, Key: k, FromSeq: uint64(split)})
	})
}

func check(t *testing.T, o VerifyOptions) {
	rep, err := Verify(o)
	broken := errors.Is(err, ErrChainBroken)
	if broken != (rep.Problem != nil) {
		t.Fatalf("error %v but problem %+v", err, rep.Problem)
	}
	if err != nil && !broken {
		t.Fatalf("unexpected error on readable files: %v", err)
	}
	if rep.Problem != nil && (rep.Problem.Kind == "" || rep.Problem.File == "" || (rep.Records > 0 && rep.Problem.Line < 1)) {
		t.Fatalf("problem without location or kind: %+v", rep.Problem)
	}
	if err == nil && rep.Records > 0 && rep.Keyed == 0 {
		t.Fatalf("a trail without keyed records passed: %+v", rep)
	}
}

// FuzzParseCheckpoint feeds arbitrary bytes to ParseCheckpoint: it must not
// panic, anything it accepts must re-encode to the same bytes (so no two
// encodings of one checkpoint authenticate), and a single flipped byte of a
// valid checkpoint must be refused.
func FuzzParseCheckpoint(f *testing.F) {
	k := fuzzKey(f)
	good := MarshalCheckpoint(Checkpoint{Seq: 7, Head: GenesisHash[:63] + "1", Time: time.Date(2026, 12, 4, 13, 0, 0, 5, time.UTC), Log: "/var/log/moat/audit.jsonl"}, k)
	f.Add(good, uint16(10))
	f.Add(MarshalCheckpoint(Checkpoint{Head: GenesisHash, Time: time.Unix(0, 0), Log: "a\"\\\n\u2028"}, k), uint16(0))
	f.Add([]byte(`{"moat_audit_checkpoint":2,"mac":"`+GenesisHash+`"}`), uint16(3))
	f.Add([]byte("{}"), uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, flip uint16) {
		k := fuzzKey(t)
		cp, err := ParseCheckpoint(data, k)
		if err != nil {
			if !errors.Is(err, ErrBadCheckpoint) {
				t.Fatalf("error does not wrap ErrBadCheckpoint: %v", err)
			}
		} else if again := MarshalCheckpoint(cp, k); !bytes.Equal(bytes.TrimSuffix(again, []byte("\n")), bytes.TrimSuffix(data, []byte("\n"))) {
			t.Fatalf("accepted %q, which re-encodes as %q", data, again)
		}
		if len(good) > 0 {
			bad := bytes.Clone(good)
			i := int(flip) % (len(bad) - 1) // keep the newline
			bad[i] ^= 0x01
			if _, err := ParseCheckpoint(bad, k); err == nil {
				t.Fatalf("flipped byte %d accepted: %q", i, bad)
			}
		}
	})
}
