package plugincli

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// setFormat tells how to read an evaluation set.
type setFormat struct {
	// textField names the text in JSON objects and the text column of a
	// CSV file; empty means "prompt" or "text".
	textField string
	// labelColumn names the CSV column that labels each row.
	labelColumn string
}

// labelled is an evaluation set split by label.
type labelled struct {
	attacks, benign []string
}

// errBadSet wraps every problem with an evaluation set's content.
var errBadSet = errors.New("bad evaluation set")

// readSet reads an evaluation set, choosing the format by extension: .jsonl
// or .ndjson (JSON lines), .csv, anything else a JSON array. Every text of
// a file without labels is returned in attacks when attack is set, in
// benign otherwise; a CSV file with the label column is split by it.
func readSet(path string, attack bool, f setFormat) (labelled, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return labelled{}, fmt.Errorf("reading eval set: %w", err)
	}
	var texts []string
	switch strings.ToLower(filepath.Ext(path)) {
	case ".jsonl", ".ndjson":
		texts, err = parseJSONLines(b, f.textField)
	case ".csv":
		if f.labelColumn != "" {
			return parseLabelledCSV(b, f)
		}
		texts, err = parseCSV(b, f.textField)
	default:
		texts, err = parseJSONArray(b, f.textField)
	}
	if err != nil {
		return labelled{}, err
	}
	if attack {
		return labelled{attacks: texts}, nil
	}
	return labelled{benign: texts}, nil
}

// textOf returns the text of one JSON value: a string, or the field of an
// object (field, or "prompt" then "text" when field is empty).
func textOf(raw json.RawMessage, field string) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var o map[string]json.RawMessage
	if err := json.Unmarshal(raw, &o); err != nil {
		return "", fmt.Errorf("want a string or an object")
	}
	fields := []string{field}
	if field == "" {
		fields = []string{"prompt", "text"}
	}
	for _, name := range fields {
		v, ok := o[name]
		if !ok {
			continue
		}
		if err := json.Unmarshal(v, &s); err != nil {
			return "", fmt.Errorf("field %q is not a string", name)
		}
		return s, nil
	}
	return "", fmt.Errorf("object has no %s field", quoteAll(fields))
}

func parseJSONArray(b []byte, field string) ([]string, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%w: want a JSON array: %v", errBadSet, err)
	}
	out := make([]string, 0, len(raw))
	for i, r := range raw {
		s, err := textOf(r, field)
		if err != nil {
			return nil, fmt.Errorf("%w: item %d: %v", errBadSet, i, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func parseJSONLines(b []byte, field string) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 64<<20)
	for line := 1; sc.Scan(); line++ {
		l := bytes.TrimSpace(sc.Bytes())
		if len(l) == 0 {
			continue
		}
		s, err := textOf(l, field)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", errBadSet, line, err)
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadSet, err)
	}
	return out, nil
}

// readCSV reads every record and the index of the text column: textField,
// or "text" or "prompt", or the only column.
func readCSV(b []byte, textField string) (header []string, rows [][]string, col int, err error) {
	r := csv.NewReader(bytes.NewReader(b))
	r.FieldsPerRecord = 0
	header, err = r.Read()
	if err == io.EOF {
		return nil, nil, 0, fmt.Errorf("%w: empty CSV file", errBadSet)
	}
	if err != nil {
		return nil, nil, 0, fmt.Errorf("%w: %v", errBadSet, err)
	}
	rows, err = r.ReadAll()
	if err != nil {
		return nil, nil, 0, fmt.Errorf("%w: %v", errBadSet, err)
	}
	col = -1
	names := []string{textField}
	if textField == "" {
		names = []string{"text", "prompt"}
	}
	for _, n := range names {
		if i := slices.Index(header, n); i >= 0 {
			col = i
			break
		}
	}
	if col < 0 && textField == "" && len(header) == 1 {
		col = 0
	}
	if col < 0 {
		return nil, nil, 0, fmt.Errorf("%w: no text column %s in the CSV header %q (set --text-field)", errBadSet, quoteAll(names), header)
	}
	return header, rows, col, nil
}

func parseCSV(b []byte, textField string) ([]string, error) {
	_, rows, col, err := readCSV(b, textField)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(rows))
	for _, r := range rows {
		out = append(out, r[col])
	}
	return out, nil
}

func parseLabelledCSV(b []byte, f setFormat) (labelled, error) {
	header, rows, col, err := readCSV(b, f.textField)
	if err != nil {
		return labelled{}, err
	}
	lc := slices.Index(header, f.labelColumn)
	if lc < 0 {
		return labelled{}, fmt.Errorf("%w: no label column %q in the CSV header %q", errBadSet, f.labelColumn, header)
	}
	var out labelled
	for i, r := range rows {
		attack, ok := parseLabel(r[lc])
		if !ok {
			return labelled{}, fmt.Errorf("%w: row %d: label %q is neither an attack (1, true, yes, attack, injection, jailbreak, malicious, unsafe) nor benign (0, false, no, benign, safe)", errBadSet, i+2, r[lc])
		}
		if attack {
			out.attacks = append(out.attacks, r[col])
		} else {
			out.benign = append(out.benign, r[col])
		}
	}
	return out, nil
}

// parseLabel reads a label cell.
func parseLabel(s string) (attack, ok bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "true", "yes", "attack", "injection", "jailbreak", "malicious", "unsafe":
		return true, true
	case "0", "false", "no", "benign", "safe":
		return false, true
	}
	return false, false
}

// wilson returns the 95% Wilson score interval of k successes in n trials,
// as shares in [0, 1]. It is (0, 0) for n = 0.
func wilson(k, n int) (lo, hi float64) {
	if n == 0 {
		return 0, 0
	}
	const z = 1.959963984540054
	p := float64(k) / float64(n)
	nf := float64(n)
	den := 1 + z*z/nf
	center := (p + z*z/(2*nf)) / den
	half := z * math.Sqrt(p*(1-p)/nf+z*z/(4*nf*nf)) / den
	return max(0, center-half), min(1, center+half)
}

// quoteAll quotes names and joins them with "or".
func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, " or ")
}
