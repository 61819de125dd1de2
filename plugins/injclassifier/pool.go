package injclassifier

import (
	"sync"
	"unsafe"
)

// bufPool recycles the normalization buffers of texts up to 64 KiB.
type bufPool struct{ p sync.Pool }

var normPool bufPool

func (p *bufPool) get(n int) []byte {
	if b, ok := p.p.Get().(*[]byte); ok && cap(*b) >= n {
		return *b
	}
	return make([]byte, 0, max(n, 4096))
}

func (p *bufPool) put(b []byte) {
	if cap(b) > 64<<10 {
		return
	}
	b = b[:0]
	p.p.Put(&b)
}

// unsafeInt8s views b as signed bytes without copying.
func unsafeInt8s(b []byte) []int8 {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*int8)(unsafe.Pointer(&b[0])), len(b))
}
