package audit

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"time"
)

// Query selects records for Search. Empty fields match everything.
type Query struct {
	RequestID string
	Client    string
	User      string
	Decision  string
	// Since and Until bound Time (Since inclusive, Until exclusive).
	Since, Until time.Time
	// Limit caps the result; 0 means DefaultSearchLimit, and it is capped
	// at MaxSearchLimit.
	Limit int
}

// Search limits.
const (
	DefaultSearchLimit = 100
	MaxSearchLimit     = 10000
)

func (q Query) match(r *Record) bool {
	return (q.RequestID == "" || r.RequestID == q.RequestID) &&
		(q.Client == "" || r.Client == q.Client) &&
		(q.User == "" || r.User == q.User) &&
		(q.Decision == "" || r.Decision == q.Decision) &&
		(q.Since.IsZero() || !r.Time.Before(q.Since)) &&
		(q.Until.IsZero() || r.Time.Before(q.Until))
}

// Search returns the records of the trail at path (its rotated files
// included, see Files) that match q, newest first. Lines that are not
// records are skipped; Search does not check the chain (use Verify).
func Search(path string, q Query) ([]Record, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultSearchLimit
	}
	limit = min(limit, MaxSearchLimit)
	files, err := Files(path)
	if err != nil {
		return nil, fmt.Errorf("searching audit log: %w", err)
	}
	var out []Record
	for i := len(files) - 1; i >= 0 && len(out) < limit; i-- {
		found, err := searchFile(files[i], q)
		if err != nil {
			return nil, fmt.Errorf("searching audit log: %w", err)
		}
		// found is oldest first; take from its end.
		for j := len(found) - 1; j >= 0 && len(out) < limit; j-- {
			out = append(out, found[j])
		}
	}
	// Files are in chain order, so out is newest first by seq; order by
	// time too in case the clock stepped back.
	slices.SortStableFunc(out, func(a, b Record) int { return b.Time.Compare(a.Time) })
	return out, nil
}

// searchFile returns the matching records of one file, in file order.
func searchFile(name string, q Query) ([]Record, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Record
	br := bufio.NewReaderSize(f, 256<<10)
	for {
		line, tooLong, err := readLine(br)
		if len(line) > 0 && !tooLong {
			var r Record
			if json.Unmarshal(line, &r) == nil && q.match(&r) {
				out = append(out, r)
			}
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
	}
}
