package window

import (
	"encoding/binary"
	"math"
	"math/bits"
	"unsafe"
)

// Distinct sets.
//
// A dset holds non-zero uint64 keys. It starts inline (four keys, no
// allocation), grows into an open-addressing table, and past that:
//   - an IP set becomes a HyperLogLog sketch once it would hold more than
//     the exact limit (the window is then flagged sdk.WindowEstimated);
//   - a port set becomes a 65536-bit bitmap (8 KiB) once its table would
//     exceed 1024 slots: ports are 16-bit, so the bitmap is exact and no
//     larger than the table it replaces; port counts are never estimated.
//
// The table, bitmap or sketch registers all live in one []uint64, so a set
// operation touches the set header and one block of memory. Blocks come
// from and return to a setPool owned by the aggregator, so steady-state
// operation does not allocate.
type dset struct {
	// tab is the first word of the block (table slots, 0 = empty; bitmap
	// words; or sketch registers) of 1<<lg words, nil when inline: a
	// pointer and a byte instead of a slice header keep a set at 32 bytes.
	tab  *uint64
	inl  [inlineKeys]uint64
	n    uint32 // exact element count (unused once sketched)
	mode uint8
	lg   uint8
}

// words returns s's block (nil when inline).
func (s *dset) words() []uint64 {
	if s.tab == nil {
		return nil
	}
	return unsafe.Slice(s.tab, 1<<s.lg)
}

// setWords makes t (a power-of-two length) s's block.
func (s *dset) setWords(t []uint64) {
	s.tab, s.lg = &t[0], uint8(bits.TrailingZeros(uint(len(t))))
}

const (
	modeInline uint8 = iota
	modeTable
	modeBitmap
	modeSketch
)

const (
	inlineKeys = 4
	minTable   = 8 // holds inlineKeys+1 at most ¾ full
	// portTableMax is the largest table of a port set: 1024 slots of 8
	// bytes equal the 8 KiB bitmap that replaces it. Tables are at most ¾
	// full (a port set becomes a bitmap past 768 ports).
	portTableMax = 1024
	bitmapWords  = 65536 / 64
	sketchWords  = sketchM / 8
)

// ipKey encodes a 16-byte address as a set key: IPv4-mapped addresses
// exactly (1<<32 | address), IPv6 addresses as a 63-bit fingerprint with
// the top bit set (two of 1024 addresses collide with probability < 1e-13).
func ipKey(a *[16]byte) uint64 {
	hi := binary.BigEndian.Uint64(a[:8])
	lo := binary.BigEndian.Uint64(a[8:])
	if hi == 0 && lo>>32 == 0xffff {
		return 1<<32 | lo&0xffffffff
	}
	return mix64(hi^mix64(lo)) | 1<<63
}

// portKey encodes a port as a set key.
func portKey(p uint16) uint64 { return uint64(p) + 1 }

// setPool recycles the blocks of sets, by power-of-two size.
type setPool struct {
	limit  uint32 // exact bound of IP sets
	blocks [16][][]uint64
}

func (p *setPool) get(n int) []uint64 {
	c := bits.TrailingZeros(uint(n))
	if k := len(p.blocks[c]); k > 0 {
		t := p.blocks[c][k-1]
		p.blocks[c] = p.blocks[c][:k-1]
		return t
	}
	return make([]uint64, n)
}

func (p *setPool) put(t []uint64) {
	clear(t)
	c := bits.TrailingZeros(uint(len(t)))
	p.blocks[c] = append(p.blocks[c], t)
}

// reset empties s and returns its block to the pool.
func (p *setPool) reset(s *dset) {
	if s.tab != nil {
		p.put(s.words())
	}
	*s = dset{}
}

// slotStart returns where the probe for k in t starts.
func slotStart(t []uint64, k uint64) int {
	return int((k * 0x9e3779b97f4a7c15) >> (64 - bits.TrailingZeros(uint(len(t)))))
}

// slot returns the index of k in t, or of the empty slot where k belongs.
func slot(t []uint64, k uint64) int {
	mask := len(t) - 1
	i := slotStart(t, k)
	for t[i] != 0 && t[i] != k {
		i = (i + 1) & mask
	}
	return i
}

// add inserts key k (non-zero); ip selects the IP policy (sketch past the
// limit) over the port policy (bitmap past the table).
func (p *setPool) add(s *dset, k uint64, ip bool) {
	switch s.mode {
	case modeInline:
		for _, x := range s.inl[:s.n] {
			if x == k {
				return
			}
		}
		if ip && s.n >= p.limit {
			p.toSketch(s)
			sketchAdd(s.words(), mix64(k))
			return
		}
		if s.n < inlineKeys {
			s.inl[s.n] = k
			s.n++
			return
		}
		p.toTable(s, minTable)
	case modeSketch:
		sketchAdd(s.words(), mix64(k))
		return
	case modeBitmap:
		if bitmapSet(s.words(), k-1) {
			s.n++
		}
		return
	}
	t := s.words()
	i := slot(t, k)
	if t[i] == k {
		return
	}
	if ip && s.n >= p.limit {
		p.toSketch(s)
		sketchAdd(s.words(), mix64(k))
		return
	}
	if int(s.n+1)*4 > len(t)*3 { // at most ¾ full
		if !ip && len(t) >= portTableMax {
			p.toBitmap(s)
			bitmapSet(s.words(), k-1)
			s.n++
			return
		}
		p.toTable(s, 2*len(t))
		t = s.words()
		i = slot(t, k)
	}
	t[i] = k
	s.n++
}

// exact returns s's keys when it is inline or a table: either the inline
// keys or the table's slots (zeros are empty slots).
func (s *dset) exact() []uint64 {
	if s.mode == modeInline {
		return s.inl[:s.n]
	}
	return s.words()
}

// toTable moves s's exact keys into a table of n slots.
func (p *setPool) toTable(s *dset, n int) {
	t := p.get(n)
	for _, k := range s.exact() {
		if k != 0 {
			t[slot(t, k)] = k
		}
	}
	if s.tab != nil {
		p.put(s.words())
	}
	s.setWords(t)
	s.mode = modeTable
}

// toSketch turns s (exact) into a sketch.
func (p *setPool) toSketch(s *dset) {
	if s.mode == modeSketch {
		return
	}
	t := p.get(sketchWords)
	for _, k := range s.exact() {
		if k != 0 {
			sketchAdd(t, mix64(k))
		}
	}
	if s.tab != nil {
		p.put(s.words())
	}
	s.setWords(t)
	s.mode = modeSketch
}

// toBitmap turns a port set (exact) into a bitmap.
func (p *setPool) toBitmap(s *dset) {
	if s.mode == modeBitmap {
		return
	}
	t := p.get(bitmapWords)
	for _, k := range s.exact() {
		if k != 0 {
			bitmapSet(t, k-1)
		}
	}
	if s.tab != nil {
		p.put(s.words())
	}
	s.setWords(t)
	s.mode = modeBitmap
}

// union adds every key of o to s.
func (p *setPool) union(s, o *dset, ip bool) {
	switch o.mode {
	case modeSketch:
		p.toSketch(s)
		sketchMerge(s.words(), o.words())
	case modeBitmap:
		p.toBitmap(s)
		s.n = bitmapOr(s.words(), o.words())
	default:
		for _, k := range o.exact() {
			if k != 0 {
				p.add(s, k, ip)
			}
		}
	}
}

// count returns the number of distinct keys and whether it is estimated.
// An estimate is never below limit+1, the count at which sketching began.
func (p *setPool) count(s *dset) (float64, bool) {
	if s.mode == modeSketch {
		return math.Max(math.Round(sketchEstimate(s.words())), float64(p.limit)+1), true
	}
	return float64(s.n), false
}

// bitmapSet sets bit i and reports whether it was clear.
func bitmapSet(b []uint64, i uint64) bool {
	w, m := i>>6&(bitmapWords-1), uint64(1)<<(i&63)
	if b[w]&m != 0 {
		return false
	}
	b[w] |= m
	return true
}

// bitmapOr makes b the union of b and o and returns its population.
func bitmapOr(b, o []uint64) uint32 {
	n := 0
	for i := range b {
		b[i] |= o[i]
		n += bits.OnesCount64(b[i])
	}
	return uint32(n)
}
