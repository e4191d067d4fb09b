package window

import "encoding/binary"

// addrIndex maps addresses to source indexes: an open-addressing table
// (linear probing) of 8-byte slots, each a 32-bit hash tag and index+1
// (0 = empty). A match is confirmed against the address list, so the table
// stays small enough to live in cache (8 bytes a slot, at most half full)
// and one probe usually costs one cache line. Entries are never removed
// one by one: the whole index is cleared when the longest window closes.
type addrIndex struct {
	tab   []uint64
	shift uint // 64 − log2(len(tab))
	n     int
}

const minIndex = 1024

// addrHash hashes a 16-byte address (mix64 of both halves).
func addrHash(a *[16]byte) uint64 {
	hi := binary.LittleEndian.Uint64(a[:8])
	lo := binary.LittleEndian.Uint64(a[8:])
	return mix64(lo ^ hi*0x9e3779b97f4a7c15)
}

// find returns the index of addr (hash h), or -1 and the empty slot where
// it belongs.
func (x *addrIndex) find(addr *[16]byte, h uint64, addrs [][16]byte) (int32, int) {
	t := x.tab
	if len(t) == 0 {
		return -1, -1
	}
	mask := len(t) - 1
	tag := h & 0xffffffff
	for i := int(h >> x.shift); ; i = (i + 1) & mask {
		e := t[i]
		if e == 0 {
			return -1, i
		}
		if e>>32 == tag {
			if j := int32(uint32(e)) - 1; addrs[j] == *addr {
				return j, i
			}
		}
	}
}

// insert adds addr (hash h, not present) as index j; addrs[j] must hold it.
func (x *addrIndex) insert(addr *[16]byte, h uint64, j int32, addrs [][16]byte) {
	if (x.n+1)*2 > len(x.tab) {
		x.grow(addrs)
	}
	_, i := x.find(addr, h, addrs)
	x.tab[i] = (h&0xffffffff)<<32 | uint64(uint32(j+1))
	x.n++
}

// grow doubles the table (or allocates it) and reinserts every entry.
func (x *addrIndex) grow(addrs [][16]byte) {
	n := max(minIndex, 2*len(x.tab))
	old := x.tab
	x.tab = make([]uint64, n)
	x.shift = 64
	for n > 1 {
		n >>= 1
		x.shift--
	}
	mask := len(x.tab) - 1
	for _, e := range old {
		if e == 0 {
			continue
		}
		h := addrHash(&addrs[uint32(e)-1])
		i := int(h >> x.shift)
		for x.tab[i] != 0 {
			i = (i + 1) & mask
		}
		x.tab[i] = e
	}
}

// reset removes every entry, keeping the table.
func (x *addrIndex) reset() {
	if x.n > 0 {
		clear(x.tab)
		x.n = 0
	}
}
