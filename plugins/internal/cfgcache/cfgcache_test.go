package cfgcache

import (
	"errors"
	"fmt"
	"sync"
	"testing"
)

func TestCacheBuildsOncePerConfig(t *testing.T) {
	var c Cache[int]
	builds := 0
	build := func(raw []byte) (int, error) { builds++; return len(raw), nil }
	for i := 0; i < 10; i++ {
		v, err := c.Get([]byte(`{"a":1}`), build)
		if err != nil || v != 7 {
			t.Fatalf("Get = %d, %v", v, err)
		}
	}
	if builds != 1 {
		t.Fatalf("built %d times, want 1", builds)
	}
	if _, err := c.Get([]byte(`{"a":2}`), build); err != nil || builds != 2 {
		t.Fatalf("second config: builds=%d err=%v", builds, err)
	}
}

func TestCacheKeepsErrors(t *testing.T) {
	var c Cache[int]
	boom := errors.New("boom")
	builds := 0
	build := func([]byte) (int, error) { builds++; return 0, boom }
	for i := 0; i < 3; i++ {
		if _, err := c.Get([]byte("x"), build); !errors.Is(err, boom) {
			t.Fatalf("err = %v", err)
		}
	}
	if builds != 1 {
		t.Fatalf("built %d times, want 1", builds)
	}
}

func TestCacheIsBounded(t *testing.T) {
	c := Cache[int]{Size: 4}
	for i := 0; i < 100; i++ {
		if _, err := c.Get(fmt.Appendf(nil, "%d", i), func(raw []byte) (int, error) { return i, nil }); err != nil {
			t.Fatal(err)
		}
		if c.Len() > 4 {
			t.Fatalf("len %d after %d inserts", c.Len(), i+1)
		}
	}
}

func TestCacheConcurrent(t *testing.T) {
	var c Cache[string]
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				key := fmt.Appendf(nil, "k%d", i%80)
				v, _ := c.Get(key, func(raw []byte) (string, error) { return string(raw), nil })
				if v != string(key) {
					t.Errorf("Get(%s) = %s", key, v)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func BenchmarkCacheHit(b *testing.B) {
	var c Cache[int]
	raw := []byte(`{"patterns":["a","b"]}`)
	build := func(raw []byte) (int, error) { return 1, nil }
	c.Get(raw, build)
	b.ReportAllocs()
	for b.Loop() {
		c.Get(raw, build)
	}
}
