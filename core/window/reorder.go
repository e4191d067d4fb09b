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
// arrive in order go to a FIFO (O(1)); the few that arrive out of order go
// to a binary min-heap (O(log n)). Both keep their storage.
type reorder struct {
	q    []rec
	qh   int // head of q
	heap []rec
}

func (o *reorder) len() int { return len(o.q) - o.qh + len(o.heap) }

func (o *reorder) push(r *rec) {
	if n := len(o.q); n == o.qh || r.ts >= o.q[n-1].ts {
		if o.qh > 0 && o.qh == n {
			o.q, o.qh = o.q[:0], 0
		} else if o.qh >= 4096 && o.qh*2 >= n {
			k := copy(o.q, o.q[o.qh:])
			o.q, o.qh = o.q[:k], 0
		}
		o.q = append(o.q, *r)
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

// peek returns the next packet in order, or nil.
func (o *reorder) peek() *rec {
	var q, h *rec
	if o.qh < len(o.q) {
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

// pop removes the packet peek returned (r) and copies it to dst.
func (o *reorder) pop(r *rec, dst *rec) {
	*dst = *r
	if o.qh < len(o.q) && r == &o.q[o.qh] {
		o.qh++
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
