package injection

import "unsafe"

// unsafeString views b as a string without copying. The tokenizer never
// writes to a byte range after handing it out as a word, and the words do
// not outlive the call that produced them.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
