package window

import (
	"encoding/binary"
	"math/rand/v2"
)

// hsKey identifies a TCP connection attempt from the client's side.
type hsKey struct {
	client, server [16]byte
	cport, sport   uint16
}

// hsNode is one unanswered SYN: 64 bytes, one cache line.
type hsNode struct {
	key        hsKey
	hash       uint64
	ts         int64
	prev, next int32
}

// hsTable holds the latest unanswered SYN of each 4-tuple. It is global
// (not per window) and bounded: when full, the entry with the oldest SYN is
// evicted and counted. Entries sit in a doubly linked list in SYN-time order
// (packets are processed in time order), so eviction is O(1).
//
// It was a Go map, which cost a fifth of the aggregator's CPU on traffic
// with many SYNs (a scanner's SYNs are nearly all new keys). The index is
// now an open-addressing table like addrIndex: 8-byte slots holding the top
// 32 bits of the key's hash and the node number, so a SYN to a new 4-tuple
// usually costs one cache line of the table and no node. Deletion shifts
// the following entries back (no tombstones), which the hash bits in the
// slot make possible without reading their nodes. The hash is seeded per
// table: the keys come from the network, and a fixed hash would let a
// sender build colliding 4-tuples that make every probe long.
type hsTable struct {
	tab        []uint64 // hash>>32 << 32 | node+1; 0 = empty
	shift      uint     // 64 − log2(len(tab))
	seed       uint64
	nodes      []hsNode
	free       []int32
	n          int
	head, tail int32 // oldest, newest; -1 when empty
	max        int
	evicted    uint64
}

const minHSIndex = 1024

func newHSTable(max int) *hsTable {
	return &hsTable{head: -1, tail: -1, max: max, seed: rand.Uint64() | 1}
}

// len is the number of unanswered SYNs held.
func (t *hsTable) len() int { return t.n }

func (t *hsTable) hash(k *hsKey) uint64 {
	h := t.seed
	h = mix64(h ^ binary.LittleEndian.Uint64(k.client[8:]))
	h = mix64(h ^ binary.LittleEndian.Uint64(k.server[8:]))
	h = mix64(h ^ uint64(k.cport)<<16 ^ uint64(k.sport))
	if [8]byte(k.client[:8]) != [8]byte{} || [8]byte(k.server[:8]) != [8]byte{} {
		// IPv6: the upper halves too (IPv4-mapped addresses have zeros there).
		h = mix64(h ^ binary.LittleEndian.Uint64(k.client[:8]))
		h = mix64(h ^ binary.LittleEndian.Uint64(k.server[:8]))
	}
	return h
}

// find returns the slot of k (hash h) and its node, or the empty slot where
// it belongs and -1.
func (t *hsTable) find(k *hsKey, h uint64) (slot int, node int32) {
	mask := len(t.tab) - 1
	tag := h >> 32
	for i := int(h >> t.shift); ; i = (i + 1) & mask {
		e := t.tab[i]
		if e == 0 {
			return i, -1
		}
		if e>>32 == tag {
			if j := int32(uint32(e)) - 1; t.nodes[j].key == *k {
				return i, j
			}
		}
	}
}

// slotOf returns the slot holding node j.
func (t *hsTable) slotOf(j int32) int {
	mask := len(t.tab) - 1
	want := uint64(uint32(j + 1))
	for i := int(t.nodes[j].hash >> t.shift); ; i = (i + 1) & mask {
		if t.tab[i]&0xffffffff == want {
			return i
		}
	}
}

// remove empties slot i, shifting back the entries of its probe run that
// would no longer be found.
func (t *hsTable) remove(i int) {
	mask := len(t.tab) - 1
	for {
		t.tab[i] = 0
		j := i
		for {
			j = (j + 1) & mask
			e := t.tab[j]
			if e == 0 {
				t.n--
				return
			}
			// The entry at j may move to i if its home slot is not in (i, j].
			home := int(e>>32<<32>>t.shift) & mask
			if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
				t.tab[i] = e
				i = j
				break
			}
		}
	}
}

func (t *hsTable) grow() {
	n := max(minHSIndex, 2*len(t.tab))
	old := t.tab
	t.tab = make([]uint64, n)
	t.shift = 64
	for n > 1 {
		n >>= 1
		t.shift--
	}
	mask := len(t.tab) - 1
	for _, e := range old {
		if e == 0 {
			continue
		}
		i := int(e>>32<<32>>t.shift) & mask
		for t.tab[i] != 0 {
			i = (i + 1) & mask
		}
		t.tab[i] = e
	}
}

func (t *hsTable) unlink(i int32) {
	n := &t.nodes[i]
	if n.prev >= 0 {
		t.nodes[n.prev].next = n.next
	} else {
		t.head = n.next
	}
	if n.next >= 0 {
		t.nodes[n.next].prev = n.prev
	} else {
		t.tail = n.prev
	}
}

func (t *hsTable) pushBack(i int32) {
	n := &t.nodes[i]
	n.prev, n.next = t.tail, -1
	if t.tail >= 0 {
		t.nodes[t.tail].next = i
	} else {
		t.head = i
	}
	t.tail = i
}

// syn records a SYN (without ACK) of k at ts, replacing an earlier one.
func (t *hsTable) syn(k *hsKey, ts int64) {
	if (t.n+1)*2 > len(t.tab) {
		t.grow()
	}
	h := t.hash(k)
	slot, i := t.find(k, h)
	if i >= 0 {
		t.nodes[i].ts = ts
		t.unlink(i)
		t.pushBack(i)
		return
	}
	if t.n >= t.max {
		old := t.head
		t.unlink(old)
		t.remove(t.slotOf(old))
		t.free = append(t.free, old)
		t.evicted++
		// The shift may have moved entries into the slot found above.
		slot, _ = t.find(k, h)
	}
	if n := len(t.free); n > 0 {
		i = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		i = int32(len(t.nodes))
		t.nodes = append(t.nodes, hsNode{})
	}
	t.nodes[i].key, t.nodes[i].hash, t.nodes[i].ts = *k, h, ts
	t.pushBack(i)
	t.tab[slot] = h>>32<<32 | uint64(uint32(i+1))
	t.n++
}

// synack matches a SYN/ACK answering k at ts and returns the latency in ns.
// The entry is consumed, so a retransmitted SYN/ACK is not counted twice.
func (t *hsTable) synack(k *hsKey, ts int64) (int64, bool) {
	if t.n == 0 {
		return 0, false
	}
	slot, i := t.find(k, t.hash(k))
	if i < 0 {
		return 0, false
	}
	lat := ts - t.nodes[i].ts
	t.unlink(i)
	t.remove(slot)
	t.free = append(t.free, i)
	return lat, true
}
