package injclassifier

import (
	"sync"
	"unsafe"
)

// bufPool recycles the normalization buffers of texts up to 64 KiB. It
// holds pointers to slices, so that giving one back costs no allocation.
type bufPool struct{ p sync.Pool }

var normPool bufPool

// get returns a buffer of capacity at least n; give it back with put.
func (p *bufPool) get(n int) *[]byte {
	if bp, ok := p.p.Get().(*[]byte); ok {
		if cap(*bp) < n {
			*bp = make([]byte, 0, n)
		}
		return bp
	}
	b := make([]byte, 0, max(n, 4096))
	return &b
}

// put gives bp back holding b, the buffer as used (grown or not), unless b
// is over 64 KiB.
func (p *bufPool) put(bp *[]byte, b []byte) {
	if cap(b) > 64<<10 {
		return
	}
	*bp = b[:0]
	p.p.Put(bp)
}

// unsafeInt8s views b as signed bytes without copying.
func unsafeInt8s(b []byte) []int8 {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*int8)(unsafe.Pointer(&b[0])), len(b))
}
