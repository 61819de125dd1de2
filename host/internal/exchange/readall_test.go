package exchange

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReadAll(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 500)
	boom := errors.New("boom")
	tests := []struct {
		name  string
		r     func() io.Reader
		hint  int64
		limit int64
		want  []byte
		err   error
	}{
		{"exact hint", func() io.Reader { return bytes.NewReader(body) }, int64(len(body)), 1 << 20, body, nil},
		{"hint too small", func() io.Reader { return bytes.NewReader(body) }, 10, 1 << 20, body, nil},
		{"hint too large", func() io.Reader { return bytes.NewReader(body) }, 1 << 16, 1 << 20, body, nil},
		{"hint above limit", func() io.Reader { return bytes.NewReader(body) }, 1 << 21, 1 << 20, body, nil},
		{"unknown length", func() io.Reader { return bytes.NewReader(body) }, -1, 1 << 20, body, nil},
		{"one byte reads", func() io.Reader { return iotest.OneByteReader(bytes.NewReader(body)) }, int64(len(body)), 1 << 20, body, nil},
		{"empty", func() io.Reader { return strings.NewReader("") }, 0, 1 << 20, []byte{}, nil},
		{"error after data", func() io.Reader { return io.MultiReader(bytes.NewReader(body[:100]), iotest.ErrReader(boom)) }, int64(len(body)), 1 << 20, body[:100], boom},
		{"data and EOF together", func() io.Reader { return iotest.DataErrReader(bytes.NewReader(body)) }, int64(len(body)), 1 << 20, body, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadAll(tc.r(), tc.hint, tc.limit)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("read %d bytes, want %d", len(got), len(tc.want))
			}
		})
	}
}
