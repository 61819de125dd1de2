package injclassifier

import (
	"unicode"
	"unicode/utf8"
)

// Features: the text is lower-cased, its whitespace runs collapsed to one
// space and its padding floods cut to three repetitions (see tokens.end);
// then every character 4- and 5-gram (over UTF-8 bytes) and every word
// unigram and bigram (words are runs of letters and digits) is hashed
// into one of 1<<Bits buckets. The model is linear: its score is the bias
// plus the sum of the bucket weights of all feature occurrences divided by
// the square root of their number, or of MinNorm when there are fewer (see
// Norm). Character 3-grams are left out: they
// fire on every short trigger word ("ignore" alone holds four of them) and,
// measured on the held-out split at the calibrated threshold, dropping them
// detects more (83.0% against 81.2%) at the same false-positive bound.

// Bits is log2 of the number of hashed feature buckets.
const Bits = 18

const (
	fnvOffset = 2166136261
	fnvPrime  = 16777619
	// salts keep the n-gram orders and word features in separate hash
	// spaces.
	saltWord   = 0x5bd1e995
	saltBigram = 0x27d4eb2f
)

var orderSalt = [6]uint32{0, 0, 0, 0x9e3779b1, 0x85ebca6b, 0xc2b2ae35}

// bucket maps a 32-bit hash to a bucket index.
func bucket(h uint32) uint32 { return (h * 0x9e3779b1) >> (32 - Bits) }

// normalize lower-cases text and collapses whitespace runs into one space,
// appending to dst, and collapses padding floods (see tokens.end). Invalid
// UTF-8 bytes are kept as they are.
func normalize(dst []byte, text string) []byte {
	base := len(dst)
	t := tokens{prevEnd: -1, start: base}
	space := true // drop leading whitespace
	for i := 0; i < len(text); {
		c := text[i]
		if c < utf8.RuneSelf {
			i++
			switch {
			case c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
				if !space {
					dst = t.end(dst)
					space = true
				}
				continue
			case 'A' <= c && c <= 'Z':
				c += 'a' - 'A'
			}
			dst = append(dst, c)
			space = false
			continue
		}
		r, size := utf8.DecodeRuneInString(text[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, c)
			i++
			space = false
			continue
		}
		i += size
		if unicode.IsSpace(r) {
			if !space {
				dst = t.end(dst)
				space = true
			}
			continue
		}
		dst = utf8.AppendRune(dst, unicode.ToLower(r))
		space = false
	}
	if !space {
		dst = t.end(dst)
		if len(dst) > base && dst[len(dst)-1] == ' ' {
			dst = dst[:len(dst)-1]
		}
	}
	return dst
}

// Padding floods (a character, a few characters or a word repeated
// hundreds of times before the instruction) would otherwise dilute the
// length-normalized score of what follows until it looks benign. So
// normalize keeps at most keepRepeats copies in a row of the same
// space-separated token, and inside a token of at least longToken bytes at
// most keepRepeats copies in a row of a unit of up to maxPeriod bytes
// ("}}}}}}", "=-=-=-=-", "öööö"). Short tokens are copied as they are, which
// keeps the cost on ordinary text to a copy and a comparison per token.
const (
	keepRepeats = 3
	maxPeriod   = 4
	longToken   = 12
)

// tokens tracks the space-separated tokens normalize writes: where the
// current one starts and the last one kept, and how many copies of it are
// in a row.
type tokens struct {
	start, prevStart, prevEnd, reps int
}

// end is called at the end of each token (dst[t.start:]): it collapses a
// long token's inner repetitions, drops the token if it is the
// (keepRepeats+1)th copy in a row of the one before, and otherwise appends
// the space that ends it.
func (t *tokens) end(dst []byte) []byte {
	o := len(dst)
	if o-t.start >= longToken {
		o = collapseToken(dst, t.start)
	}
	if t.prevEnd >= 0 && o-t.start == t.prevEnd-t.prevStart && string(dst[t.start:o]) == string(dst[t.prevStart:t.prevEnd]) {
		t.reps++
		if t.reps > keepRepeats {
			return dst[:t.start]
		}
	} else {
		t.reps = 1
	}
	t.prevStart, t.prevEnd = t.start, o
	dst = append(dst[:o], ' ')
	t.start = len(dst)
	return dst
}

// collapseToken keeps at most keepRepeats copies in a row of a unit of up
// to maxPeriod bytes in the token dst[start:], in place, and returns its new
// end.
func collapseToken(dst []byte, start int) int {
	if !repeats(dst[start:]) {
		return len(dst)
	}
	return collapseRepeats(dst, start)
}

// repeats reports whether tok holds keepRepeats+1 copies in a row of a
// unit of up to maxPeriod bytes: for some period p, keepRepeats*p positions
// in a row each equal to the byte p before (collapseRepeats skips a byte
// only there). Most tokens have none and are left as they are.
func repeats(tok []byte) bool {
	for p := 1; p <= maxPeriod; p++ {
		run := 0
		for k := p; k < len(tok); k++ {
			if tok[k] != tok[k-p] {
				run = 0
				continue
			}
			if run++; run >= keepRepeats*p {
				return true
			}
		}
	}
	return false
}

// collapseRepeats is collapseToken without the check for repeats.
func collapseRepeats(dst []byte, start int) int {
	o := start
	for k := start; k < len(dst); {
		skip := 0
		for p := 1; p <= maxPeriod && o-start >= keepRepeats*p && k+p <= len(dst); p++ {
			if periodic(dst, o, p, dst[k:k+p]) {
				skip = p
				break
			}
		}
		if skip > 0 {
			k += skip
			continue
		}
		dst[o] = dst[k]
		o++
		k++
	}
	return o
}

// periodic reports whether the keepRepeats units of p bytes before s[o]
// each equal unit.
func periodic(s []byte, o, p int, unit []byte) bool {
	for r := 1; r <= keepRepeats; r++ {
		if string(s[o-r*p:o-r*p+p]) != string(unit) {
			return false
		}
	}
	return true
}

// isWordByte reports whether b belongs to a word: ASCII letters and digits,
// and every byte of a multi-byte UTF-8 sequence.
func isWordByte(b byte) bool {
	return b >= 0x80 || ('a' <= b && b <= 'z') || ('0' <= b && b <= '9')
}

// eachFeature calls f with the bucket of every feature occurrence of the
// normalized text s.
func eachFeature(s []byte, f func(b uint32)) {
	for i := range s {
		h := uint32(fnvOffset)
		for k := 0; k < 5 && i+k < len(s); k++ {
			h = (h ^ uint32(s[i+k])) * fnvPrime
			if k >= 3 {
				f(bucket(h ^ orderSalt[k+1]))
			}
		}
	}
	var prev uint32
	havePrev := false
	for i := 0; i < len(s); {
		if !isWordByte(s[i]) {
			i++
			continue
		}
		h := uint32(fnvOffset)
		for ; i < len(s) && isWordByte(s[i]); i++ {
			h = (h ^ uint32(s[i])) * fnvPrime
		}
		f(bucket(h ^ saltWord))
		if havePrev {
			f(bucket((prev*31 + h) ^ saltBigram))
		}
		prev, havePrev = h, true
	}
}

// AppendFeatures appends the bucket of every feature occurrence of text to
// dst: the features the model scores, for training.
func AppendFeatures(dst []uint32, text string) []uint32 {
	s := normalize(nil, text)
	eachFeature(s, func(b uint32) { dst = append(dst, b) })
	return dst
}
