package window

import "github.com/netguardian/netguardian/sdk"

// Deferred record updates.
//
// Updating a record per packet costs cache misses, not arithmetic: a
// packet touches its source's base record (six cache lines), up to three
// distinct-set tables and its destination's record, and with thousands of
// active addresses in random order nearly all of it misses the caches, one
// dependent miss after another. So process only does what depends on the
// order of packets across addresses (registering addresses, handshake
// matching, the statistics) and queues the record updates as 32-byte
// events. Once maxEvents are queued, and before any window closes, flush
// groups the events by address with a stable counting sort and applies
// each address's events in a row: the record and its set tables are loaded
// once per flush instead of once per packet, and the records are visited
// in address-index order.
//
// This is exact: an address's events keep their processing (time) order,
// which is all the order-dependent parts of a record (first/last packet,
// inter-arrival sums) depend on; everything else in a record is a sum, a
// min/max or a set union, which do not depend on order; and no record is
// read before the flush that precedes the closing of its window.

// Event kinds and inbound bits.
const (
	evOut       uint8 = iota // a packet sent by idx
	evIn                     // a packet received by idx (bits below)
	evHandshake              // a handshake answered by idx (latency in ts)

	evInRST     uint8 = 1 << 6
	evInUnreach uint8 = 1 << 7
	evKindMask  uint8 = evInRST - 1
)

type event struct {
	ts       int64  // evOut: timestamp; evHandshake: latency (ns)
	key      uint64 // evOut: ipKey of the destination
	idx      int32
	length   uint32
	sport    uint16
	dport    uint16
	proto    uint8
	tcpFlags uint8
	flags    uint8
	kind     uint8
}

// maxEvents is the queue length that triggers a flush (2 MB of events,
// twice: the queue and its sorted copy). Larger queues amortize a record's
// cache misses over more of its packets.
const maxEvents = 1 << 16

// maxEventsPerPacket: a packet queues at most an outbound, an inbound and a
// handshake event before the queue's length is checked.
const maxEventsPerPacket = 3

type events struct {
	max      int // flush threshold: maxEvents (tests lower it)
	q        []event
	applying []event // the queue a background flush is applying
	sorted   []event
	count    []int32       // per address, then per address the next sorted slot
	done     chan struct{} // closed when the background flush has applied its queue; nil when none runs
}

func (e *events) out(idx int32, r *rec) {
	e.q = append(e.q, event{ts: r.ts, key: ipKey(&r.dst), idx: idx, length: r.length, sport: r.sport, dport: r.dport,
		proto: r.proto, tcpFlags: r.tcpFlags, flags: r.flags, kind: evOut})
}

func (e *events) in(idx int32, length uint32, bits uint8) {
	e.q = append(e.q, event{idx: idx, length: length, kind: evIn | bits})
}

func (e *events) handshake(idx int32, lat int64) {
	e.q = append(e.q, event{ts: lat, idx: idx, kind: evHandshake})
}

func (e *events) full() bool { return len(e.q) >= e.max }

// asyncEvents is the smallest queue applied on another goroutine: the
// grouped updates are about a fifth of the aggregator's work, and applying
// them beside the next packets lets the core use its second CPU. Smaller
// queues (a window closing soon after a flush) are applied in line.
const asyncEvents = 4096

// flush hands the queued events to a background flush, which applies them
// to the base records while packets go on being processed into a fresh
// queue. Only the background flush touches the base level's records, slots
// and set pool until settle; everything that reads records (closing a
// window) settles first. One flush runs at a time, so an address's events
// are applied in order across flushes.
func (a *Aggregator) flush() {
	a.settle()
	e := &a.ev
	q := e.q
	if len(q) == 0 {
		return
	}
	e.q, e.applying = e.applying[:0], q
	if c := e.max + maxEventsPerPacket; cap(e.q) < c && len(q) >= e.max {
		// Full size at once: growing by appends would copy the queue and
		// touch twice its memory (fresh pages are dear on virtual machines).
		e.q = make([]event, 0, c)
	}
	n := len(a.addrs)
	if len(q) < asyncEvents {
		a.applyEvents(q, n)
		return
	}
	done := make(chan struct{})
	e.done = done
	go func() {
		defer close(done)
		a.applyEvents(q, n)
	}()
}

// settle waits until the background flush, if any, has applied its events.
func (a *Aggregator) settle() {
	if a.ev.done != nil {
		<-a.ev.done
		a.ev.done = nil
	}
}

// applyEvents applies q, events of addresses below n, to the base records.
func (a *Aggregator) applyEvents(q []event, n int) {
	e := &a.ev
	var sorted []event
	if len(q) == 1 {
		sorted = q
	} else {
		// Stable counting sort by address index.
		if cap(e.count) < n+1 {
			e.count = make([]int32, n+1, max(n+1, 2*cap(e.count)))
		}
		cnt := e.count[:n+1]
		clear(cnt)
		for i := range q {
			cnt[q[i].idx+1]++
		}
		for i := 1; i <= n; i++ {
			cnt[i] += cnt[i-1]
		}
		if cap(e.sorted) < len(q) {
			e.sorted = make([]event, len(q), cap(q))
		}
		sorted = e.sorted[:len(q)]
		for i := range q {
			j := &cnt[q[i].idx]
			sorted[*j] = q[i]
			*j++
		}
	}
	for i := 0; i < len(sorted); {
		idx := sorted[i].idx
		x := a.rec(idx, 0)
		for ; i < len(sorted) && sorted[i].idx == idx; i++ {
			a.apply(x, &sorted[i])
		}
	}
}

// apply applies one event to record x.
func (a *Aggregator) apply(x *acc, ev *event) {
	switch ev.kind & evKindMask {
	case evIn:
		x.inc(cInPackets, 1)
		x.b[cInBytes] += uint64(ev.length)
		if ev.kind&evInRST != 0 {
			x.inc(cInRST, 1)
		}
		if ev.kind&evInUnreach != 0 {
			x.inc(cInUnreach, 1)
		}
		return
	case evHandshake:
		x.inc(cHandshakes, 1)
		x.hsSum.addU64(uint64(ev.ts))
		return
	}
	frag := sdk.PacketFlags(ev.flags)&sdk.PacketFragment != 0
	x.out(ev.ts, ev.length)
	switch ev.proto {
	case sdk.ProtoTCP:
		x.inc(cTCP, 1)
		x.b[cTCPBytes] += uint64(ev.length)
		if !frag {
			f := ev.tcpFlags
			if f&sdk.TCPSyn != 0 {
				if f&sdk.TCPAck != 0 {
					x.inc(cSYNACK, 1)
				} else {
					x.inc(cSYN, 1)
				}
			}
			x.inc(cFIN, uint32(f&sdk.TCPFin))
			x.inc(cRST, uint32(f&sdk.TCPRst)>>2)
			x.inc(cPSH, uint32(f&sdk.TCPPsh)>>3)
			x.inc(cACK, uint32(f&sdk.TCPAck)>>4)
		}
	case sdk.ProtoUDP:
		x.inc(cUDP, 1)
		x.b[cUDPBytes] += uint64(ev.length)
	case sdk.ProtoICMP, sdk.ProtoICMPv6:
		x.inc(cICMP, 1)
		x.b[cICMPBytes] += uint64(ev.length)
	}
	if sdk.PacketFlags(ev.flags)&sdk.PacketDNSQuery != 0 {
		x.inc(cDNS, 1)
	}
	a.pool.add(&x.dstIPs, ev.key, true)
	if !frag && (ev.proto == sdk.ProtoTCP || ev.proto == sdk.ProtoUDP) {
		a.pool.add(&x.dstPorts, portKey(ev.dport), false)
		a.pool.add(&x.srcPorts, portKey(ev.sport), false)
	}
}
