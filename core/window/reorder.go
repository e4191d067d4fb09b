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
// arrive in order go to a FIFO (a ring, O(1), nothing moves); the few that
// arrive out of order go to a binary min-heap (O(log n)). Both keep their
// storage.
type reorder struct {
	q    []rec // ring; len is 0 or a power of two
	qh   int   // head of the ring (index of the oldest entry)
	qn   int   // entries in the ring
	heap []rec
}

func (o *reorder) len() int { return o.qn + len(o.heap) }

// at returns the FIFO's i-th oldest entry (i < qn).
func (o *reorder) at(i int) *rec { return &o.q[(o.qh+i)&(len(o.q)-1)] }

// tail returns a slot at the end of the FIFO for a packet with timestamp ts
// when it arrives in order (not before the newest one buffered), so the
// caller can fill it in place; nil otherwise (use push). The slot is
// buffered as soon as tail returns it.
func (o *reorder) tail(ts int64) *rec {
	if o.qn > 0 && ts < o.at(o.qn-1).ts {
		return nil
	}
	if o.qn == len(o.q) {
		o.growRing()
	}
	r := o.at(o.qn)
	o.qn++
	return r
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

// growRing doubles the ring, moving its entries to the front.
func (o *reorder) growRing() {
	q := make([]rec, max(1024, 2*len(o.q)))
	if o.qn > 0 {
		k := copy(q, o.q[o.qh:])
		copy(q[k:], o.q[:o.qh])
	}
	o.q, o.qh = q, 0
}

// peek returns the next packet in order, or nil.
func (o *reorder) peek() *rec {
	var q, h *rec
	if o.qn > 0 {
		q = &o.q[o.qh]
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
func (o *reorder) isHead(r *rec) bool { return o.qn > 0 && r == &o.q[o.qh] }

// dropHead removes the FIFO's oldest entry.
func (o *reorder) dropHead() {
	o.qh = (o.qh + 1) & (len(o.q) - 1)
	o.qn--
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
