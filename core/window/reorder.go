package window

// rec is one accepted IP packet waiting in the reorder buffer.
type rec struct {
	ts       int64
	seq      uint64 // arrival order, breaks timestamp ties
	src, dst [16]byte
	sport    uint16
	dport    uint16
	length   uint32
	proto    uint8
	tcpFlags uint8
	flags    uint8
}

func (r *rec) before(o *rec) bool {
	return r.ts < o.ts || (r.ts == o.ts && r.seq < o.seq)
}

// reorder releases packets in (timestamp, arrival) order. Packets that
// arrive in order go to a FIFO (O(1), nothing moves); the few that arrive
// out of order go to a binary min-heap (O(log n)). Both keep their storage.
//
// The FIFO holds every packet until the watermark passes it, a lateness's
// worth of traffic (hundreds of thousands of packets), so it is a queue of
// fixed-size blocks: it grows by a block, never by copying, and a drained
// block is reused at the tail. A doubling ring spent 9 % of the core's
// CPU in copies and in first touches of fresh pages.
type reorder struct {
	blocks [][]rec // the FIFO's blocks, oldest first, from blocks[bh]
	bh     int     // index of the head block in blocks
	head   int     // index of the oldest entry in the head block
	tailN  int     // entries in the last block
	qn     int     // entries in the FIFO
	spare  [][]rec // drained blocks for reuse
	heap   []rec
}

// recBlock is the FIFO's block length in records (256 KiB).
const recBlock = 4096

func (o *reorder) len() int { return o.qn + len(o.heap) }

// tail returns a slot at the end of the FIFO for a packet with timestamp ts
// when it arrives in order (not before the newest one buffered), so the
// caller can fill it in place; nil otherwise (use push). The slot is
// buffered as soon as tail returns it.
func (o *reorder) tail(ts int64) *rec {
	if o.qn > 0 && ts < o.blocks[len(o.blocks)-1][o.tailN-1].ts {
		return nil
	}
	if o.qn == 0 || o.tailN == recBlock {
		o.addBlock()
	}
	r := &o.blocks[len(o.blocks)-1][o.tailN]
	o.tailN++
	o.qn++
	return r
}

// addBlock starts a new last block, reusing a drained one when it can.
func (o *reorder) addBlock() {
	if o.qn == 0 && len(o.blocks) > o.bh {
		// Empty: the one block left (head and tail were in it) starts over.
		o.head, o.tailN = 0, 0
		return
	}
	var b []rec
	if n := len(o.spare); n > 0 {
		b, o.spare = o.spare[n-1], o.spare[:n-1]
	} else {
		b = make([]rec, recBlock)
	}
	if o.bh > 0 && len(o.blocks) == cap(o.blocks) {
		// Slide the live blocks down instead of growing the list.
		n := copy(o.blocks, o.blocks[o.bh:])
		clear(o.blocks[n:])
		o.blocks, o.bh = o.blocks[:n], 0
	}
	o.blocks = append(o.blocks, b)
	o.tailN = 0
	if o.qn == 0 {
		o.head = 0
	}
}

// peek returns the next packet in order, or nil.
func (o *reorder) peek() *rec {
	var q, h *rec
	if o.qn > 0 {
		q = &o.blocks[o.bh][o.head]
	}
	if len(o.heap) > 0 {
		h = &o.heap[0]
	}
	if q == nil || (h != nil && h.before(q)) {
		return h
	}
	return q
}

// isHead reports whether r, returned by peek, is the FIFO's oldest entry:
// it stays valid, in place, until the next tail or push.
func (o *reorder) isHead(r *rec) bool { return o.qn > 0 && r == &o.blocks[o.bh][o.head] }

// dropHead removes the FIFO's oldest entry.
func (o *reorder) dropHead() {
	o.qn--
	o.head++
	if o.qn == 0 {
		return // the block stays in place for the next tail
	}
	if o.head == recBlock {
		o.spare = append(o.spare, o.blocks[o.bh])
		o.blocks[o.bh] = nil
		o.bh++
		o.head = 0
	}
}

// push buffers a copy of r.
func (o *reorder) push(r *rec) {
	if t := o.tail(r.ts); t != nil {
		*t = *r
		return
	}
	o.heap = append(o.heap, *r)
	h := o.heap
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if !h[i].before(&h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

// pop removes the packet peek returned (r) and copies it to dst.
func (o *reorder) pop(r *rec, dst *rec) {
	*dst = *r
	if o.isHead(r) {
		o.dropHead()
		return
	}
	h := o.heap
	n := len(h) - 1
	h[0] = h[n]
	h = h[:n]
	o.heap = h
	for i := 0; ; {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && h[r].before(&h[l]) {
			m = r
		}
		if !h[m].before(&h[i]) {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}
