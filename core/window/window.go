// Package window is NetGuardian's per-source window aggregator: it turns
// the packet stream into 5 s, 30 s and 180 s feature records.
//
// Semantics (docs/features.md has the full table of features):
//
//   - Time is packet time. Windows are aligned to the epoch:
//     start = floor(ts/size)·size; a window is [start, start+size).
//   - The watermark is the newest packet timestamp seen minus Lateness. A
//     packet older than the watermark is late: it is counted in
//     Stats.LatePackets and dropped. Accepted packets wait in a reorder
//     buffer until the watermark passes them and are then processed in
//     timestamp order (ties in arrival order), so order-dependent features
//     (inter-arrival times, handshake matching) are exact even when input is
//     out of order by up to Lateness. Every packet of a window that has
//     closed is late, since windows close when the watermark passes their
//     end.
//   - A record exists for every IP address seen as source or destination in
//     a window; inbound-only records have packets_total = 0.
//   - Base windows (the first size) are computed from packets; every larger
//     size is cascaded from the records of the size before it. The merge is
//     exact: integer sums (sums of squares in 128 bits), min/max, and
//     inter-arrival samples merged in time order; distinct sets are unions.
//     So a cascaded 30 s record is identical to one computed directly.
//   - When windows close, they are emitted as one sdk.FeatureBatch per
//     window size and period, smaller sizes first; rows sorted by address.
//   - Close flushes: windows ending at or before the newest timestamp are
//     complete; windows still open are emitted with sdk.WindowPartial.
//   - Tick implements the live-mode idle timeout (see Tick).
//   - Memory is bounded by Options.MaxSources addresses per longest window,
//     Options.MaxPendingHandshakes, and the reorder buffer (the packets of
//     the last Lateness, 64 bytes each).
//
// An Aggregator is not safe for concurrent use.
package window

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/netguardian/netguardian/sdk"
)

// Defaults applied by New to zero Options fields.
const (
	DefaultMaxSources           = 200000
	DefaultDistinctExactLimit   = 1024
	DefaultMaxPendingHandshakes = 65536
)

// Recommended values for the fields whose zero value is meaningful
// (DefaultOptions sets them).
const (
	DefaultLateness    = time.Second
	DefaultIdleTimeout = 10 * time.Second
)

// Options configure an Aggregator.
type Options struct {
	// Sizes are the window sizes, ascending, each a multiple of the one
	// before. The first is the base size. Nil means sdk.WindowSizes.
	Sizes []time.Duration
	// Lateness is how far behind the newest packet a packet may be and
	// still count. Zero means none: any packet older than the newest one
	// seen is late.
	Lateness time.Duration
	// IdleTimeout: after this much wall time without a newer packet, Tick
	// lets the watermark follow the wall clock. Zero disables it.
	IdleTimeout time.Duration
	// MaxSources caps the addresses tracked at once (sources and
	// destinations of the current longest window). Zero means
	// DefaultMaxSources.
	MaxSources int
	// DistinctExactLimit is the size past which a distinct-IP set becomes
	// a HyperLogLog sketch. Zero means DefaultDistinctExactLimit.
	DistinctExactLimit int
	// MaxPendingHandshakes caps the table of unanswered SYNs. Zero means
	// DefaultMaxPendingHandshakes.
	MaxPendingHandshakes int
}

// DefaultOptions returns the recommended options for a sensor.
func DefaultOptions() Options {
	return Options{
		Sizes:                slices.Clone(sdk.WindowSizes),
		Lateness:             DefaultLateness,
		IdleTimeout:          DefaultIdleTimeout,
		MaxSources:           DefaultMaxSources,
		DistinctExactLimit:   DefaultDistinctExactLimit,
		MaxPendingHandshakes: DefaultMaxPendingHandshakes,
	}
}

// Stats are the aggregator's counters. Nothing is dropped without being
// counted here.
type Stats struct {
	Packets        uint64 // IP packets processed into windows
	NonIPPackets   uint64 // packets flagged sdk.PacketNonIP (ignored)
	LatePackets    uint64 // packets older than the watermark (dropped)
	BadTimestamps  uint64 // packets timestamped before 1970 or after ~2116 (dropped)
	Buffered       int    // packets waiting in the reorder buffer
	ActiveSources  int    // addresses tracked now
	SourcesDropped uint64 // distinct addresses refused because of MaxSources (HyperLogLog estimate)
	PacketsDropped uint64 // packets whose source was refused (not in any window)
	InboundDropped uint64 // packets whose destination was refused (not in its inbound counters)

	PendingHandshakes int    // unanswered SYNs held
	Handshakes        uint64 // SYN → SYN/ACK pairs matched
	HandshakesEvicted uint64 // unanswered SYNs evicted because the table was full

	// Windows counts the rows emitted per window size, in Sizes order.
	Windows []uint64
	// Partial counts the rows emitted with sdk.WindowPartial per size.
	Partial []uint64
}

// ErrClosed is returned by Add and Tick after Close.
var ErrClosed = errors.New("window aggregator is closed")

// Aggregator builds per-source windows from packet batches.
type Aggregator struct {
	emit     func(*sdk.FeatureBatch) error
	sizes    []int64 // ns
	secs     []float64
	lateness int64
	idle     int64
	maxSrc   int

	// watermark
	started bool
	maxTs   int64
	wm      int64
	seq     uint64
	buf     reorder
	cur     rec // packet being processed
	ev      events

	// idle-timeout anchor
	anchorSet  bool
	anchorTs   int64
	anchorWall int64

	// open periods per level
	open  []bool
	start []int64

	// sources: address → index into addrs. Records are per level and
	// dense: a level holds records only for the sources active in its open
	// period, numbered in order of first use (slot maps a source to its
	// record, dirty maps a record back to its source). Records live in
	// chunks shared by all levels through a free list, so a level that
	// closes hands its chunks, one by one as they are merged, to the next
	// level: memory follows the records that are live, not sources × levels.
	index  addrIndex
	recent [2]recent
	addrs  [][16]byte
	slot   [][]int32 // [level][source]: record number + 1, 0 = none
	dirty  [][]int32 // [level][record]: its source
	slab   [][][]acc // [level][chunk][record & chunk mask]
	chunks [][]acc   // free chunks, cleared
	inUse  int       // chunks held by the levels
	peak   int       // most chunks in use since the longest window opened
	order  []int32   // closeLevel's records sorted by address

	pool    setPool
	hs      *hsTable
	refused []uint64 // sketch of refused addresses

	stats  Stats
	closed bool
	err    error
}

// New returns an Aggregator that calls emit with each batch of closed
// windows. emit owns the batch it is given: the aggregator never touches it
// again. An error from emit stops the aggregator: it is returned by the
// call that closed the windows and by every later call.
func New(opts Options, emit func(*sdk.FeatureBatch) error) (*Aggregator, error) {
	if emit == nil {
		return nil, errors.New("window: emit function is nil")
	}
	sizes := opts.Sizes
	if len(sizes) == 0 {
		sizes = sdk.WindowSizes
	}
	for i, s := range sizes {
		if s <= 0 || s > maxSize {
			return nil, fmt.Errorf("window: size %v is not between 1ns and %v", s, time.Duration(maxSize))
		}
		if i > 0 && (s <= sizes[i-1] || s%sizes[i-1] != 0) {
			return nil, fmt.Errorf("window: size %v is not a larger multiple of %v", s, sizes[i-1])
		}
	}
	if opts.Lateness < 0 || opts.IdleTimeout < 0 {
		return nil, fmt.Errorf("window: negative lateness %v or idle timeout %v", opts.Lateness, opts.IdleTimeout)
	}
	if opts.MaxSources < 0 || opts.DistinctExactLimit < 0 || opts.MaxPendingHandshakes < 0 {
		return nil, errors.New("window: negative max sources, distinct exact limit or max pending handshakes")
	}
	if opts.MaxSources > math.MaxInt32/len(sizes) {
		return nil, fmt.Errorf("window: max sources %d too large", opts.MaxSources)
	}
	a := &Aggregator{
		emit:     emit,
		lateness: int64(opts.Lateness),
		idle:     int64(opts.IdleTimeout),
		maxSrc:   cmp0(opts.MaxSources, DefaultMaxSources),
		open:     make([]bool, len(sizes)),
		start:    make([]int64, len(sizes)),
		slot:     make([][]int32, len(sizes)),
		dirty:    make([][]int32, len(sizes)),
		slab:     make([][][]acc, len(sizes)),
		wm:       math.MinInt64,
		recent:   [2]recent{{idx: -1}, {idx: -1}},
		hs:       newHSTable(cmp0(opts.MaxPendingHandshakes, DefaultMaxPendingHandshakes)),
		ev:       events{max: maxEvents},
	}
	a.pool.limit = uint32(min(cmp0(opts.DistinctExactLimit, DefaultDistinctExactLimit), math.MaxUint32-1))
	for _, s := range sizes {
		a.sizes = append(a.sizes, int64(s))
		a.secs = append(a.secs, s.Seconds())
	}
	a.stats.Windows = make([]uint64, len(sizes))
	a.stats.Partial = make([]uint64, len(sizes))
	return a, nil
}

func cmp0(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// Sizes returns the window sizes in use.
func (a *Aggregator) Sizes() []time.Duration {
	out := make([]time.Duration, len(a.sizes))
	for i, s := range a.sizes {
		out[i] = time.Duration(s)
	}
	return out
}

// Stats returns a copy of the counters.
func (a *Aggregator) Stats() Stats {
	s := a.stats
	s.Windows = slices.Clone(s.Windows)
	s.Partial = slices.Clone(s.Partial)
	s.Buffered = a.buf.len()
	s.ActiveSources = len(a.addrs)
	if a.hs != nil { // nil once Close has released it (a.stats has its last counts)
		s.PendingHandshakes = a.hs.len()
		s.HandshakesEvicted = a.hs.evicted
	}
	if a.refused != nil {
		s.SourcesDropped = uint64(math.Round(sketchEstimate(a.refused)))
	}
	return s
}

// maxTimestamp keeps window ends (start + largest size) inside int64.
const (
	maxTimestamp = math.MaxInt64 - int64(1<<62)
	maxSize      = time.Duration(1 << 60) // about 36 years
)

// Add processes a batch. It returns an error for a malformed batch (nothing
// is processed), after Close, or when emit failed.
func (a *Aggregator) Add(b *sdk.PacketBatch) error {
	if a.err != nil {
		return a.err
	}
	if a.closed {
		return ErrClosed
	}
	if err := b.Validate(); err != nil {
		return fmt.Errorf("window: %w", err)
	}
	r := &a.cur
	for i, ts := range b.Timestamps {
		f := b.Flags[i]
		if sdk.PacketFlags(f)&sdk.PacketNonIP != 0 {
			a.stats.NonIPPackets++
			continue
		}
		if ts < 0 || ts > maxTimestamp-a.sizes[len(a.sizes)-1] {
			a.stats.BadTimestamps++
			continue
		}
		if a.started && ts < a.wm {
			a.stats.LatePackets++
			continue
		}
		if !a.started || ts > a.maxTs {
			a.started = true
			a.maxTs = ts
			a.wm = max(a.wm, ts-a.lateness) // ts ≥ 0, no overflow
		}
		// A packet that arrives in order is written straight into the
		// reorder buffer's FIFO (no copy); one already below the watermark
		// with nothing buffered needs no buffering at all.
		direct := a.buf.len() == 0 && ts <= a.wm
		var t *rec
		if !direct {
			t = a.buf.tail(ts)
		}
		if t == nil {
			t = r
		}
		t.ts = ts
		t.seq = a.seq
		a.seq++
		t.src = [16]byte(b.SrcAddrs[i*16 : i*16+16])
		t.dst = [16]byte(b.DstAddrs[i*16 : i*16+16])
		t.sport = uint16(b.SrcPorts[i])
		t.dport = uint16(b.DstPorts[i])
		t.length = b.Lengths[i]
		t.proto = b.Protocols[i]
		t.tcpFlags = b.TCPFlags[i]
		t.flags = f
		switch {
		case direct:
			a.process(r)
		case t == r: // out of order
			a.buf.push(r)
			a.release()
		default:
			a.release()
		}
		if a.err != nil {
			return a.err
		}
	}
	a.closeBefore(a.wm)
	return a.err
}

// release processes buffered packets up to the watermark, in order.
func (a *Aggregator) release() {
	for a.err == nil {
		p := a.buf.peek()
		if p == nil || p.ts > a.wm {
			return
		}
		if a.buf.isHead(p) {
			// Processed in place: nothing is buffered until it returns.
			a.process(p)
			a.buf.dropHead()
			continue
		}
		a.buf.pop(p, &a.cur)
		a.process(&a.cur)
	}
}

// Tick drives the idle timeout in live mode; call it periodically (e.g.
// every second) with the wall clock. When no packet newer than the newest
// one has arrived for IdleTimeout of wall time (measured from the first
// Tick that saw the current newest timestamp), the aggregator assumes that
// the packet clock kept pace with the wall clock and advances the watermark
// to newest + idle − Lateness, closing the windows it passes. Packets that
// then arrive older than the watermark are late. Replaying a file (packet
// time far from wall time) is unaffected because only elapsed wall time is
// used. Tick does nothing when IdleTimeout is zero.
func (a *Aggregator) Tick(wallNow time.Time) error {
	if a.err != nil {
		return a.err
	}
	if a.closed {
		return ErrClosed
	}
	if a.idle <= 0 || !a.started {
		return nil
	}
	wall := wallNow.UnixNano()
	if !a.anchorSet || a.anchorTs != a.maxTs {
		a.anchorSet, a.anchorTs, a.anchorWall = true, a.maxTs, wall
		return nil
	}
	idle := wall - a.anchorWall
	if idle < a.idle {
		return nil
	}
	w := a.maxTs - a.lateness
	if idle > maxTimestamp-a.maxTs {
		w = maxTimestamp - a.lateness
	} else {
		w += idle
	}
	if w > a.wm {
		a.wm = w
		a.release()
		a.closeBefore(a.wm)
	}
	return a.err
}

// Close processes what is buffered and flushes every open window: those
// that end at or before the newest timestamp are complete, the others are
// flagged sdk.WindowPartial. Calling Close again does nothing.
func (a *Aggregator) Close() error {
	if a.err != nil {
		return a.err
	}
	if a.closed {
		return nil
	}
	a.closed = true
	if !a.started {
		return nil
	}
	a.wm = max(a.wm, a.maxTs)
	a.release()
	// No packet will be processed again: release the reorder buffer and
	// the handshake table before the last windows are emitted, so their
	// memory can serve the batches.
	if a.err == nil {
		a.buf = reorder{}
		a.stats.PendingHandshakes = a.hs.len()
		a.stats.HandshakesEvicted = a.hs.evicted
		a.hs = nil
	}
	a.closeBefore(a.wm)
	for l := range a.sizes {
		if a.err == nil && a.open[l] {
			a.closeLevel(l, true)
		}
	}
	return a.err
}

// lookup returns the index of addr, registering it, or -1 when refused.
func (a *Aggregator) lookup(addr *[16]byte) int32 {
	// Two-entry cache in front of the map: a packet train between two
	// hosts, in both directions, hits it.
	if a.recent[0].idx >= 0 && a.recent[0].addr == *addr {
		return a.recent[0].idx
	}
	if a.recent[1].idx >= 0 && a.recent[1].addr == *addr {
		a.recent[0], a.recent[1] = a.recent[1], a.recent[0]
		return a.recent[0].idx
	}
	h := addrHash(addr)
	i, _ := a.index.find(addr, h, a.addrs)
	if i < 0 {
		i = a.register(addr, h)
	}
	if i >= 0 {
		a.recent[1] = a.recent[0]
		a.recent[0] = recent{*addr, i}
	}
	return i
}

type recent struct {
	addr [16]byte
	idx  int32 // -1: empty
}

// register adds addr as a new source, or returns -1 when refused.
func (a *Aggregator) register(addr *[16]byte, h uint64) int32 {
	if len(a.addrs) >= a.maxSrc {
		if a.refused == nil {
			a.refused = make([]uint64, sketchWords)
		}
		sketchAdd(a.refused, mix64(ipKey(addr)))
		return -1
	}
	i := int32(len(a.addrs))
	a.addrs = append(a.addrs, *addr)
	a.index.insert(addr, h, i, a.addrs)
	return i
}

// chunkBits: records are allocated 2^chunkBits at a time.
const chunkBits = 8

// rec returns source i's record of level l, creating it (empty) if the
// source has none in the open period.
func (a *Aggregator) rec(i int32, l int) *acc {
	// slot grows here, not when the source registers: registering runs
	// beside a background flush, which owns the base level's slots.
	if n := int(i) + 1 - len(a.slot[l]); n > 0 {
		a.slot[l] = append(a.slot[l], make([]int32, n)...)
	}
	p := a.slot[l][i] - 1
	if p < 0 {
		p = int32(len(a.dirty[l]))
		if int(p)>>chunkBits == len(a.slab[l]) {
			a.slab[l] = append(a.slab[l], a.chunk())
		}
		a.dirty[l] = append(a.dirty[l], i)
		a.slot[l][i] = p + 1
	}
	return a.record(l, p)
}

// record returns record p of level l.
func (a *Aggregator) record(l int, p int32) *acc {
	return &a.slab[l][p>>chunkBits][p&(1<<chunkBits-1)]
}

// chunk returns a cleared chunk of records, from the free list if it has one.
func (a *Aggregator) chunk() []acc {
	a.inUse++
	a.peak = max(a.peak, a.inUse)
	if n := len(a.chunks); n > 0 {
		c := a.chunks[n-1]
		a.chunks[n-1] = nil
		a.chunks = a.chunks[:n-1]
		return c
	}
	return make([]acc, 1<<chunkBits)
}

// enter opens the periods containing ts, closing those that end before.
func (a *Aggregator) enter(ts int64) {
	if a.open[0] && ts < a.start[0]+a.sizes[0] {
		return
	}
	a.closeBefore(ts)
	for l, s := range a.sizes {
		if !a.open[l] {
			a.open[l] = true
			a.start[l] = ts - ts%s // ts ≥ 0
		}
	}
}

// closeBefore closes every open period that ends at or before t.
func (a *Aggregator) closeBefore(t int64) {
	for l, s := range a.sizes {
		if a.err != nil {
			return
		}
		if !a.open[l] {
			continue
		}
		if a.start[l]+s > t {
			return
		}
		a.closeLevel(l, false)
	}
}

// process adds one packet (in time order) to the open base windows. What
// depends on the order of packets across addresses (registering addresses
// against MaxSources, handshake matching) is done now; the updates of the
// source's and destination's records are queued as events and applied in
// bulk (see events.go).
func (a *Aggregator) process(r *rec) {
	a.enter(r.ts)
	if a.err != nil {
		return
	}
	a.stats.Packets++
	frag := sdk.PacketFlags(r.flags)&sdk.PacketFragment != 0
	tcp := r.proto == sdk.ProtoTCP && !frag
	if si := a.lookup(&r.src); si >= 0 {
		a.ev.out(si, r)
	} else {
		a.stats.PacketsDropped++
	}
	di := a.lookup(&r.dst)
	if di >= 0 {
		var k uint8
		if tcp && r.tcpFlags&sdk.TCPRst != 0 {
			k |= evInRST
		}
		if !frag && ((r.proto == sdk.ProtoICMP && r.sport == 3) || (r.proto == sdk.ProtoICMPv6 && r.sport == 1)) {
			k |= evInUnreach
		}
		a.ev.in(di, r.length, k)
	} else {
		a.stats.InboundDropped++
	}
	if tcp && r.tcpFlags&sdk.TCPSyn != 0 {
		if r.tcpFlags&sdk.TCPAck == 0 {
			k := hsKey{client: r.src, server: r.dst, cport: r.sport, sport: r.dport}
			a.hs.syn(&k, r.ts)
		} else {
			k := hsKey{client: r.dst, server: r.src, cport: r.dport, sport: r.sport}
			if lat, ok := a.hs.synack(&k, r.ts); ok {
				a.stats.Handshakes++
				if di >= 0 {
					a.ev.handshake(di, lat)
				}
			}
		}
	}
	if a.ev.full() {
		a.flush()
	}
}

// closeLevel emits level l's open period, folds it into level l+1, and
// frees every source once the longest window has closed.
func (a *Aggregator) closeLevel(l int, partial bool) {
	n := len(a.sizes)
	a.flush() // no record is read before its pending events are applied
	a.settle()
	start, size := a.start[l], a.sizes[l]
	a.open[l] = false
	list := a.dirty[l]
	if len(list) > 0 {
		order := a.order[:0]
		for p := range list {
			order = append(order, int32(p))
		}
		a.order = order
		slices.SortFunc(order, func(x, y int32) int { return compareAddr(&a.addrs[list[x]], &a.addrs[list[y]]) })
		nf := len(featureNames)
		vals := make([]float64, len(list)*nf)
		batch := &sdk.FeatureBatch{
			Window:        time.Duration(size),
			SchemaVersion: sdk.FeatureSchemaVersion,
			Names:         slices.Clone(featureNames),
			Rows:          make([]sdk.FeatureRow, len(list)),
		}
		st, en := time.Unix(0, start).UTC(), time.Unix(0, start+size).UTC()
		for j, p := range order {
			x := a.record(l, p)
			v := vals[j*nf : (j+1)*nf : (j+1)*nf]
			flags := a.pool.values(x, a.secs[l], v)
			if partial {
				flags |= sdk.WindowPartial
			}
			batch.Rows[j] = sdk.FeatureRow{
				Src:    netip.AddrFrom16(a.addrs[list[p]]).Unmap(),
				Start:  st,
				End:    en,
				Flags:  flags,
				Values: v,
			}
		}
		// Fold into the next level in record order, freeing each chunk
		// as soon as its records are merged, so the next level can reuse
		// it while it grows.
		for p, i := range list {
			x := a.record(l, int32(p))
			if l+1 < n {
				a.pool.merge(a.rec(i, l+1), x)
			}
			a.pool.clear(x)
			a.slot[l][i] = 0
			if p&(1<<chunkBits-1) == 1<<chunkBits-1 || p == len(list)-1 {
				c := p >> chunkBits
				a.chunks = append(a.chunks, a.slab[l][c])
				a.inUse--
				a.slab[l][c] = nil
			}
		}
		a.slab[l] = a.slab[l][:0]
		a.dirty[l] = list[:0]
		if a.closed && l == n-1 {
			a.releaseRecords()
		}
		a.stats.Windows[l] += uint64(len(list))
		if partial {
			a.stats.Partial[l] += uint64(len(list))
		}
		if err := a.emit(batch); err != nil {
			a.err = fmt.Errorf("window: emit %v windows starting %s: %w", time.Duration(size), st.Format(time.RFC3339), err)
		}
	}
	if l == n-1 {
		// The longest window closed: no record is open any more.
		a.index.reset()
		a.addrs = a.addrs[:0]
		for l := range a.slot {
			a.slot[l] = a.slot[l][:0]
		}
		// Keep the free chunks this period needed, not an older burst's.
		clear(a.chunks[min(a.peak, len(a.chunks)):])
		a.chunks = a.chunks[:min(a.peak, len(a.chunks))]
		a.peak = a.inUse
		if a.closed {
			a.releaseRecords()
		}
		a.recent = [2]recent{{idx: -1}, {idx: -1}}
	}
}

// releaseRecords drops the storage of records, sets, events and sources
// once Close has closed the longest window: the aggregator holds no record
// any more and will never hold one again.
func (a *Aggregator) releaseRecords() {
	a.chunks, a.order = nil, nil
	for l := range a.slab {
		a.slab[l], a.slot[l], a.dirty[l] = nil, nil, nil
	}
	a.pool.blocks = [len(a.pool.blocks)][][]uint64{}
	a.ev.q, a.ev.applying, a.ev.sorted, a.ev.count = nil, nil, nil, nil
	a.index = addrIndex{}
	a.addrs = nil
}

// compareAddr orders addresses as netip.Addr.Compare orders them unmapped:
// IPv4 first, then IPv6, each by value.
func compareAddr(x, y *[16]byte) int {
	x4, y4 := is4(x), is4(y)
	switch {
	case x4 && !y4:
		return -1
	case y4 && !x4:
		return 1
	}
	return bytes.Compare(x[:], y[:])
}

var v4prefix = [12]byte{10: 0xff, 11: 0xff}

func is4(a *[16]byte) bool { return [12]byte(a[:12]) == v4prefix }
