package piiredact

// iban matches an IBAN at i: two capital letters, two check digits and
// 11-30 letters or digits, compact or in groups of four separated by single
// spaces, passing the mod-97 check. It returns the end offset.
func iban(text string, i int) (int, bool) {
	if i+4 > len(text) || !isUpper(text[i+1]) || !isDigit(text[i+2]) || !isDigit(text[i+3]) {
		return 0, false
	}
	var ends [8]int // offsets where a group of four ends (candidate ends)
	nEnds := 0
	p, n, inGroup := i, 0, 0
	for p < len(text) && n < 34 {
		c := text[p]
		if isDigit(c) || isUpper(c) {
			p++
			n++
			inGroup++
			continue
		}
		if c == ' ' && inGroup == 4 && p+1 < len(text) && (isDigit(text[p+1]) || isUpper(text[p+1])) && nEnds < len(ends) {
			ends[nEnds] = p
			nEnds++
			inGroup = 0
			p++
			continue
		}
		break
	}
	if p < len(text) && isAlnum(text[p]) {
		return 0, false
	}
	// Try the longest candidate first, then shorter ones ending at a group.
	if mod97(text, i, p) {
		return p, true
	}
	for k := nEnds - 1; k >= 0; k-- {
		if mod97(text, i, ends[k]) {
			return ends[k], true
		}
	}
	return 0, false
}

func isUpper(c byte) bool { return 'A' <= c && c <= 'Z' }

// mod97 checks text[start:end] (spaces ignored) as an IBAN: 15-34
// characters, the first four moved to the end, letters as 10-35, mod 97 = 1.
func mod97(text string, start, end int) bool {
	n := 0
	for p := start; p < end; p++ {
		if text[p] != ' ' {
			n++
		}
	}
	if n < 15 || n > 34 {
		return false
	}
	rem := 0
	add := func(c byte) {
		if isDigit(c) {
			rem = (rem*10 + int(c-'0')) % 97
		} else {
			rem = (rem*100 + int(c-'A'+10)) % 97
		}
	}
	head := 0
	for p := start; p < end; p++ {
		if text[p] == ' ' {
			continue
		}
		if head < 4 {
			head++
			continue
		}
		add(text[p])
	}
	for p := start; p < start+4; p++ {
		add(text[p])
	}
	return rem == 1
}
