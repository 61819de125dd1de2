package piiredact

// group is one run of digits in a number written with separators.
type group struct {
	start, end int  // byte offsets of the digits
	sep        byte // separator before this group: 0 (first), ' ', '-', '.', '(' or ')'
}

func (g group) n() int { return g.end - g.start }

// maxGroups bounds the groups read from one number.
const maxGroups = 12

// chain reads a number starting at i: digit groups joined by one separator
// (space, hyphen, dot), the first possibly in parentheses. plus reports a
// leading '+'.
func chain(text string, i int) (gs [maxGroups]group, n int, plus bool) {
	p := i
	if text[p] == '+' {
		plus = true
		p++
	}
	var sep byte
	for n < maxGroups && p < len(text) {
		open := false
		if text[p] == '(' {
			open = true
			p++
		}
		s := p
		for p < len(text) && isDigit(text[p]) {
			p++
		}
		if p == s || open && (p >= len(text) || text[p] != ')') {
			break
		}
		gs[n] = group{start: s, end: p, sep: sep}
		n++
		if open {
			p++ // ')'
			sep = ')'
			if p < len(text) && (text[p] == ' ' || text[p] == '-') {
				p++
			}
			continue
		}
		if p+1 < len(text) && (text[p] == ' ' || text[p] == '-' || text[p] == '.') && (isDigit(text[p+1]) || text[p+1] == '(') {
			sep = text[p]
			p++
			continue
		}
		break
	}
	return gs, n, plus
}

// numeric classifies the number at i and returns the span of the match.
func numeric(text string, i int) (start, end int, kind string) {
	gs, n, plus := chain(text, i)
	if n == 0 {
		return 0, 0, ""
	}
	// The whole number must end at a boundary (not a letter or digit).
	last := gs[n-1].end
	if last < len(text) && isAlnum(text[last]) {
		return 0, 0, ""
	}
	if plus {
		if d := digits(gs[:n]); d >= 8 && d <= 15 && gs[0].start == i+1 {
			return i, last, "phone"
		}
		return 0, 0, ""
	}
	for g := 0; g < n; g++ {
		if g > 0 && gs[g].sep != ' ' {
			continue
		}
		rest := gs[g:n]
		start := gs[g].start
		if g == 0 {
			start = i
		}
		if k := card(text, rest); k > 0 {
			return start, rest[k-1].end, "card"
		}
		if ssn(text, rest) {
			return start, rest[2].end, "ssn"
		}
		if k := phone(text, rest); k > 0 {
			return start, rest[k-1].end, "phone"
		}
	}
	return 0, 0, ""
}

func digits(gs []group) int {
	d := 0
	for _, g := range gs {
		d += g.n()
	}
	return d
}

// card matches 13-19 digits over the first k groups, written without
// separators or with one kind of space or hyphen, passing Luhn.
func card(text string, gs []group) int {
	if text[gs[0].start] == '0' {
		return 0 // issuer numbers start with 1-9
	}
	d := 0
	for k := 1; k <= len(gs); k++ {
		if k > 1 && (gs[k-1].sep != ' ' && gs[k-1].sep != '-' || gs[k-1].sep != gs[1].sep) {
			return 0
		}
		d += gs[k-1].n()
		if d > 19 {
			return 0
		}
		if d >= 13 && (k == len(gs) || gs[k].sep == ' ') && luhn(text, gs[:k]) {
			return k
		}
	}
	return 0
}

func luhn(text string, gs []group) bool {
	sum, double := 0, false
	for g := len(gs) - 1; g >= 0; g-- {
		for p := gs[g].end - 1; p >= gs[g].start; p-- {
			v := int(text[p] - '0')
			if double {
				v *= 2
				if v > 9 {
					v -= 9
				}
			}
			sum += v
			double = !double
		}
	}
	return sum%10 == 0
}

// ssn matches 123-45-6789 with a valid area, group and serial.
func ssn(text string, gs []group) bool {
	if len(gs) < 3 || gs[0].n() != 3 || gs[1].n() != 2 || gs[2].n() != 4 || gs[1].sep != '-' || gs[2].sep != '-' {
		return false
	}
	if len(gs) > 3 && gs[3].sep != ' ' {
		return false
	}
	a := text[gs[0].start:gs[0].end]
	return a != "000" && a != "666" && a[0] != '9' && text[gs[1].start:gs[1].end] != "00" && text[gs[2].start:gs[2].end] != "0000"
}

// phone matches national formats and returns the number of groups used.
func phone(text string, gs []group) int {
	// North American: [1] (NXX) NXX-XXXX with separators.
	us := gs
	off := 0
	if len(us) >= 4 && us[0].n() == 1 && text[us[0].start] == '1' {
		us, off = us[1:], 1
	}
	if len(us) >= 3 && us[0].n() == 3 && us[1].n() == 3 && us[2].n() == 4 &&
		text[us[0].start] >= '2' && text[us[1].start] >= '2' &&
		us[1].sep != 0 && us[2].sep != 0 && (us[1].sep == us[2].sep || us[1].sep == ')') &&
		(len(us) == 3 || us[3].sep == ' ') {
		return off + 3
	}
	// "00" international prefix or national 0-prefixed, 3+ groups.
	if len(gs) >= 3 && text[gs[0].start] == '0' {
		// 0 then an area code (1-9), or 00 then a country code (1-9).
		var lead [3]byte
		k := 0
		for _, g := range gs {
			for p := g.start; p < g.end && k < 3; p++ {
				lead[k] = text[p]
				k++
			}
		}
		intl := lead[1] == '0'
		if k < 3 || intl && lead[2] == '0' || !intl && lead[1] == '0' {
			return 0
		}
		d := 0
		for k := 0; k < len(gs); k++ {
			if k > 0 && gs[k].sep != gs[1].sep {
				break
			}
			if gs[k].n() > 4 {
				break
			}
			d += gs[k].n()
			if k >= 2 && (k+1 == len(gs) || gs[k+1].sep == ' ' && gs[1].sep != ' ') &&
				(intl && d >= 10 && d <= 17 || !intl && d >= 9 && d <= 11) {
				return k + 1
			}
		}
	}
	return 0
}
