package audit

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzVerify feeds arbitrary bytes to Verify, as one file and split into two
// files. Verify must not panic, and must report a problem exactly when it
// returns ErrChainBroken.
func FuzzVerify(f *testing.F) {
	f.Add([]byte(""), uint16(0))
	f.Add([]byte("\n\n"), uint16(1))
	f.Add([]byte(`{"seq":1,"prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","hash":"00"}`+"\n"), uint16(3))
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		dir := t.TempDir()
		one := filepath.Join(dir, "one")
		if err := os.WriteFile(one, data, 0o600); err != nil {
			t.Fatal(err)
		}
		check(t, one)
		cut := int(split)
		if cut > len(data) {
			cut = len(data)
		}
		a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
		os.WriteFile(a, data[:cut], 0o600)
		os.WriteFile(b, data[cut:], 0o600)
		check(t, a, b)
	})
}

func check(t *testing.T, files ...string) {
	rep, err := Verify(files...)
	broken := errors.Is(err, ErrChainBroken)
	if broken != (rep.Problem != nil) {
		t.Fatalf("error %v but problem %+v", err, rep.Problem)
	}
	if err != nil && !broken {
		t.Fatalf("unexpected error on readable files: %v", err)
	}
	if rep.Problem != nil && (rep.Problem.Line < 1 || rep.Problem.Kind == "") {
		t.Fatalf("problem without location or kind: %+v", rep.Problem)
	}
}
