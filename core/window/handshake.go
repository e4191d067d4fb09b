package window

// hsKey identifies a TCP connection attempt from the client's side.
type hsKey struct {
	client, server [16]byte
	cport, sport   uint16
}

type hsNode struct {
	key        hsKey
	ts         int64
	prev, next int32
}

// hsTable holds the latest unanswered SYN of each 4-tuple. It is global
// (not per window) and bounded: when full, the entry with the oldest SYN is
// evicted and counted. Entries sit in a doubly linked list in SYN-time order
// (packets are processed in time order), so eviction is O(1).
type hsTable struct {
	idx        map[hsKey]int32
	nodes      []hsNode
	free       []int32
	head, tail int32 // oldest, newest; -1 when empty
	max        int
	evicted    uint64
}

func newHSTable(max int) *hsTable {
	return &hsTable{idx: make(map[hsKey]int32), head: -1, tail: -1, max: max}
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
	if i, ok := t.idx[*k]; ok {
		t.nodes[i].ts = ts
		t.unlink(i)
		t.pushBack(i)
		return
	}
	if len(t.idx) >= t.max {
		old := t.head
		t.unlink(old)
		delete(t.idx, t.nodes[old].key)
		t.free = append(t.free, old)
		t.evicted++
	}
	var i int32
	if n := len(t.free); n > 0 {
		i = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		i = int32(len(t.nodes))
		t.nodes = append(t.nodes, hsNode{})
	}
	t.nodes[i].key, t.nodes[i].ts = *k, ts
	t.pushBack(i)
	t.idx[*k] = i
}

// synack matches a SYN/ACK answering k at ts and returns the latency in ns.
// The entry is consumed, so a retransmitted SYN/ACK is not counted twice.
func (t *hsTable) synack(k *hsKey, ts int64) (int64, bool) {
	i, ok := t.idx[*k]
	if !ok {
		return 0, false
	}
	lat := ts - t.nodes[i].ts
	t.unlink(i)
	delete(t.idx, *k)
	t.free = append(t.free, i)
	return lat, true
}
