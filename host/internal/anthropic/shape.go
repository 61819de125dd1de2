package anthropic

// shape is a string shape of the output model: the bytes allowed first and
// after, and a length range. It stands for a regular expression of the
// form ^[first][rest]{min-1,max-1}$ at a few nanoseconds a byte (shapes are
// checked on every identifier of every response).
type shape struct {
	first, rest *[256]bool
	min, max    int
}

// byteSet returns the set of the bytes in chars, where "a-z" is a range.
func byteSet(chars string) *[256]bool {
	var s [256]bool
	for i := 0; i < len(chars); i++ {
		if i+2 < len(chars) && chars[i+1] == '-' {
			for c := int(chars[i]); c <= int(chars[i+2]); c++ {
				s[c] = true
			}
			i += 2
			continue
		}
		s[chars[i]] = true
	}
	return &s
}

// match reports whether s has the shape.
func (sh shape) match(s string) bool {
	if len(s) < sh.min || len(s) > sh.max {
		return false
	}
	for i := 0; i < len(s); i++ {
		set := sh.rest
		if i == 0 {
			set = sh.first
		}
		if !set[s[i]] {
			return false
		}
	}
	return true
}

var (
	lowerAlnumUnderscore = byteSet("a-z0-9_")
	alnumUnderscore      = byteSet("A-Za-z0-9_")
	identChars           = byteSet("A-Za-z0-9_.:/+@-")
	opaqueChars          = byteSet("A-Za-z0-9+/=_.-")

	// typeName is the shape of the API's type names. Error messages quote
	// upstream names only when they have it, so they never carry markup
	// or a key.
	typeName = shape{first: byteSet("a-z"), rest: lowerAlnumUnderscore, min: 1, max: 64}
	// identShape is an identifier (ids, model names, stop reasons, URLs
	// without spaces): relayed as sent, checked for keys.
	identShape = shape{first: identChars, rest: identChars, min: 0, max: 256}
	// opaqueShape is encrypted or signed data (base64 and its URL form).
	opaqueShape = shape{first: opaqueChars, rest: opaqueChars, min: 0, max: int(^uint(0) >> 1)}
	// keyShape is an object member name the model does not write.
	keyShape = shape{first: byteSet("A-Za-z_"), rest: alnumUnderscore, min: 1, max: 64}
)
