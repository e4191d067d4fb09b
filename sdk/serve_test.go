package sdk

import "testing"

// The buffer pool hands out buffers of the asked length from the smallest
// tier that fits, takes back buffers of any capacity into the largest tier
// they can serve, and never hands a buffer to a larger request than it can
// hold.
func TestTieredPool(t *testing.T) {
	p := newTieredPool(8, 12, 16)
	for _, n := range []int{0, 1, 256, 257, 4096, 5000, 1 << 16, 1<<16 + 1} {
		b := p.Get(n)
		if len(*b) != n {
			t.Errorf("Get(%d): length %d", n, len(*b))
		}
		if n <= 1<<16 && cap(*b) < n {
			t.Errorf("Get(%d): capacity %d", n, cap(*b))
		}
		p.Put(b)
	}
	// A buffer put back serves later requests up to its tier's size, and
	// keeps its contents (the pool does not zero: gRPC overwrites them).
	b := p.Get(4096)
	(*b)[0] = 42
	p.Put(b)
	var reused bool
	for range 100 { // sync.Pool may drop items; one reuse is enough
		c := p.Get(3000)
		if cap(*c) < 3000 || len(*c) != 3000 {
			t.Fatalf("Get(3000): len %d cap %d", len(*c), cap(*c))
		}
		if c == b {
			reused = true
			if (*c)[0] != 42 {
				t.Errorf("reused buffer lost its contents")
			}
			break
		}
		p.Put(c)
	}
	t.Logf("buffer reused: %v", reused)
	// A small buffer (below the smallest tier) is not kept.
	small := make([]byte, 10)
	p.Put(&small)
	if c := p.Get(200); cap(*c) < 200 {
		t.Fatalf("Get(200) after putting a 10-byte buffer: cap %d", cap(*c))
	}
}
