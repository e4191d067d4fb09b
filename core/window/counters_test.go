package window

import "testing"

// Packet counts are 32-bit words with high words allocated on overflow:
// counts past 2^32 stay exact, through inc and through merge.
func TestCounterCarry(t *testing.T) {
	var p setPool
	var x, y acc
	x.c[cFIN] = 1<<32 - 1
	x.inc(cFIN, 1)
	x.inc(cFIN, 1)
	if got := x.count(cFIN); got != 1<<32+1 {
		t.Fatalf("inc past 2^32: %d", got)
	}
	y.c[cFIN] = 1<<32 - 1
	y.inc(cSYN, 1)
	p.merge(&y, &x)
	if got := y.count(cFIN); got != 2<<32 {
		t.Errorf("merge past 2^32: %d, want %d", got, uint64(2<<32))
	}
	if got := y.count(cSYN); got != 1 {
		t.Errorf("merge: SYN %d, want 1", got)
	}
	v := make([]float64, len(featureNames))
	p.values(&y, 1, v)
	if v[22] != float64(2<<32) {
		t.Errorf("fin_count feature %v, want %v", v[22], float64(2<<32))
	}
	p.clear(&y)
	if y.hi != nil || y.count(cFIN) != 0 {
		t.Error("clear kept the high words")
	}
}
