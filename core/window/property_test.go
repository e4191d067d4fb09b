package window

import (
	"fmt"
	"math"
	"math/rand"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/netguardian/netguardian/sdk"
)

// genStream makes a random packet stream in arrival order: a few addresses
// (IPv4 and IPv6), every protocol and flag combination the features look
// at, SYN/ACK replies to some SYNs, timestamps spanning several 180 s
// periods from a random phase, and arrival order shuffled by up to
// lateness (key = ts + U[0, lateness)), so no packet is late.
func genStream(rng *rand.Rand, lateness time.Duration) []P {
	var pool []string
	for i := 0; i < 2+rng.Intn(9); i++ {
		if rng.Intn(4) == 0 {
			pool = append(pool, fmt.Sprintf("2001:db8::%x", i+1))
		} else {
			pool = append(pool, fmt.Sprintf("192.0.2.%d", i+1))
		}
	}
	pick := func() string { return pool[rng.Intn(len(pool))] }
	port := func() uint16 {
		if rng.Intn(2) == 0 {
			return uint16(rng.Intn(6)) // few values: duplicates (0 included)
		}
		return uint16(rng.Intn(65536))
	}
	base := t0 + rng.Int63n(int64(180*time.Second))
	span := int64(200*time.Second) + rng.Int63n(int64(400*time.Second))
	n := 30 + rng.Intn(500)
	tcpFlags := []uint8{sdk.TCPSyn, sdk.TCPSyn | sdk.TCPAck, sdk.TCPAck, sdk.TCPPsh | sdk.TCPAck,
		sdk.TCPFin | sdk.TCPAck, sdk.TCPRst, sdk.TCPRst | sdk.TCPAck, 0xff, 0}
	var ps []P
	var last int64 = base
	for i := 0; i < n; i++ {
		var ts int64
		switch rng.Intn(5) {
		case 0:
			ts = last // equal timestamps
		case 1:
			ts = last + rng.Int63n(int64(50*time.Millisecond)) // burst
		default:
			ts = base + rng.Int63n(span)
		}
		last = ts
		p := P{ts: ts, src: pick(), dst: pick(), sport: port(), dport: port(), length: uint32(40 + rng.Intn(1461))}
		switch r := rng.Intn(20); {
		case r < 10:
			p.proto = sdk.ProtoTCP
			p.tcp = tcpFlags[rng.Intn(len(tcpFlags))]
		case r < 14:
			p.proto = sdk.ProtoUDP
			if rng.Intn(3) == 0 {
				p.flags |= sdk.PacketDNSQuery
			}
		case r < 16:
			p.proto = sdk.ProtoICMP
			p.sport, p.dport = uint16(rng.Intn(12)), uint16(rng.Intn(4))
		case r < 17:
			p.proto = sdk.ProtoICMPv6
			p.sport, p.dport = uint16(rng.Intn(4)), 0
		case r < 18:
			p.proto = uint8(rng.Intn(256))
		default:
			p = P{ts: ts, length: 60, flags: sdk.PacketNonIP}
		}
		if p.flags&sdk.PacketNonIP == 0 && rng.Intn(25) == 0 {
			p.flags |= sdk.PacketFragment
		}
		ps = append(ps, p)
		if p.proto == sdk.ProtoTCP && p.tcp == sdk.TCPSyn && rng.Intn(3) > 0 {
			ps = append(ps, P{ts: ts + rng.Int63n(int64(2*time.Second)), src: p.dst, dst: p.src,
				proto: sdk.ProtoTCP, sport: p.dport, dport: p.sport, tcp: sdk.TCPSyn | sdk.TCPAck, length: 60})
		}
	}
	slices.SortStableFunc(ps, func(x, y P) int { return cmpI64(x.ts, y.ts) })
	keys := make([]int64, len(ps))
	for i := range ps {
		keys[i] = ps[i].ts
		if lateness > 0 {
			keys[i] += rng.Int63n(int64(lateness))
		}
	}
	idx := make([]int, len(ps))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(x, y int) int { return cmpI64(keys[x], keys[y]) })
	out := make([]P, len(ps))
	for i, j := range idx {
		out[i] = ps[j]
	}
	return out
}

func cmpI64(x, y int64) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// feed runs ps through a new aggregator in random batch splits.
func feed(t *testing.T, rng *rand.Rand, opts Options, ps []P) (*collector, *Aggregator) {
	t.Helper()
	c := &collector{}
	a, err := New(opts, c.emit)
	if err != nil {
		t.Fatal(err)
	}
	for len(ps) > 0 {
		k := min(len(ps), 1+rng.Intn(60))
		if err := a.Add(batchOf(ps[:k])); err != nil {
			t.Fatal(err)
		}
		ps = ps[k:]
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	return c, a
}

func rowsOf(c *collector, size time.Duration) []sdk.FeatureRow {
	var out []sdk.FeatureRow
	for _, b := range c.batches {
		if b.Window == size {
			out = append(out, b.Rows...)
		}
	}
	return out
}

func TestCascadeEqualsDirect(t *testing.T) {
	const streams = 300
	s5, s30, s180 := 5*time.Second, 30*time.Second, 180*time.Second
	for seed := int64(1); seed <= streams; seed++ {
		rng := rand.New(rand.NewSource(seed))
		lateness := time.Duration(rng.Intn(3)) * 1500 * time.Millisecond // 0, 1.5 s, 3 s
		limit := 0
		if seed%2 == 0 {
			limit = 3 // force sketches
		}
		ps := genStream(rng, lateness)
		opts := func(sizes ...time.Duration) Options {
			return Options{Sizes: sizes, Lateness: lateness, DistinctExactLimit: limit}
		}
		full, fa := feed(t, rng, opts(s5, s30, s180), ps)
		d30, _ := feed(t, rng, opts(s30), ps)
		d180, _ := feed(t, rng, opts(s180), ps)
		mid, _ := feed(t, rng, opts(s30, s180), ps)
		if st := fa.Stats(); st.LatePackets != 0 {
			t.Fatalf("seed %d: %d late packets; the generator should make none", seed, st.LatePackets)
		}
		compare := func(what string, x, y []sdk.FeatureRow) {
			t.Helper()
			if len(x) != len(y) {
				t.Fatalf("seed %d %s: %d rows vs %d", seed, what, len(x), len(y))
			}
			for i := range x {
				// Integer state makes the merge exact: compare bit for bit.
				if err := sameRow(x[i], y[i], 0); err != nil {
					t.Fatalf("seed %d %s row %d: %v", seed, what, i, err)
				}
			}
		}
		compare("30s cascaded vs direct", rowsOf(full, s30), rowsOf(d30, s30))
		compare("180s cascaded vs direct", rowsOf(full, s180), rowsOf(d180, s180))
		compare("180s from 30s vs from 5s", rowsOf(mid, s180), rowsOf(full, s180))

		// Independent brute-force computation from the packet list.
		ref := reference(ps, lateness, limit)
		for _, size := range []time.Duration{s5, s30, s180} {
			got := rowsOf(full, size)
			want := ref.rows(size)
			if len(got) != len(want) {
				t.Fatalf("seed %d %v: %d rows, reference %d", seed, size, len(got), len(want))
			}
			for i := range got {
				w := want[i]
				if got[i].Flags&sdk.WindowEstimated != 0 {
					// The reference cannot sketch: compare the rest.
					w.Values = slices.Clone(w.Values)
					w.Values[slices.Index(sdk.Features, sdk.FeatureDistinctDstIPs)] = get(got[i], sdk.FeatureDistinctDstIPs)
				}
				if err := sameRow(got[i], w, 1e-9); err != nil {
					t.Fatalf("seed %d %v row %d vs reference: %v", seed, size, i, err)
				}
			}
		}
	}
}

// TestSplitInvariance: the same packets in different batch splits give
// identical emissions.
func TestSplitInvariance(t *testing.T) {
	for seed := int64(1000); seed < 1040; seed++ {
		rng := rand.New(rand.NewSource(seed))
		ps := genStream(rng, 2*time.Second)
		opts := Options{Lateness: 2 * time.Second}
		one, _ := run(t, opts, ps)
		many, _ := feed(t, rng, opts, ps)
		if err := sameBatches(one.batches, many.batches); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		// Packet by packet.
		c := &collector{}
		a, _ := New(opts, c.emit)
		for _, p := range ps {
			if err := a.Add(batchOf([]P{p})); err != nil {
				t.Fatal(err)
			}
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		if err := sameBatches(one.batches, c.batches); err != nil {
			t.Fatalf("seed %d packet by packet: %v", seed, err)
		}
	}
}

// refWindows is the brute-force reference: features computed directly
// from the sorted packets of each window, in plain float64 with two-pass
// variances.
type refWindows struct {
	maxTs int64
	limit int
	pkts  []P // accepted IP packets in time order
	hs    map[int]int64
}

func reference(arrival []P, lateness time.Duration, limit int) *refWindows {
	r := &refWindows{limit: limit, hs: map[int]int64{}}
	if r.limit == 0 {
		r.limit = DefaultDistinctExactLimit
	}
	wm, maxTs, started := int64(math.MinInt64), int64(0), false
	for _, p := range arrival {
		if p.flags&sdk.PacketNonIP != 0 || (started && p.ts < wm) {
			continue
		}
		if !started || p.ts > maxTs {
			started, maxTs = true, p.ts
			wm = max(wm, p.ts-int64(lateness))
		}
		r.pkts = append(r.pkts, p)
	}
	r.maxTs = maxTs
	slices.SortStableFunc(r.pkts, func(x, y P) int { return cmpI64(x.ts, y.ts) })
	// Handshakes: latest SYN per 4-tuple, consumed by the first SYN/ACK.
	type tuple struct {
		c, s   string
		cp, sp uint16
	}
	pending := map[tuple]int64{}
	for i, p := range r.pkts {
		if p.proto != sdk.ProtoTCP || p.flags&sdk.PacketFragment != 0 || p.tcp&sdk.TCPSyn == 0 {
			continue
		}
		if p.tcp&sdk.TCPAck == 0 {
			pending[tuple{p.src, p.dst, p.sport, p.dport}] = p.ts
		} else if s, ok := pending[tuple{p.dst, p.src, p.dport, p.sport}]; ok {
			r.hs[i] = p.ts - s
			delete(pending, tuple{p.dst, p.src, p.dport, p.sport})
		}
	}
	return r
}

func (r *refWindows) rows(size time.Duration) []sdk.FeatureRow {
	sz := int64(size)
	type key struct {
		start int64
		addr  netip.Addr
	}
	type agg struct {
		out, in    []int // packet indices
		hs         []int64
		dstIP      map[string]bool
		dstP, srcP map[uint16]bool
	}
	m := map[key]*agg{}
	get := func(k key) *agg {
		if m[k] == nil {
			m[k] = &agg{dstIP: map[string]bool{}, dstP: map[uint16]bool{}, srcP: map[uint16]bool{}}
		}
		return m[k]
	}
	for i, p := range r.pkts {
		st := p.ts - p.ts%sz
		s := get(key{st, netip.MustParseAddr(p.src)})
		s.out = append(s.out, i)
		s.dstIP[netip.MustParseAddr(p.dst).String()] = true
		if p.flags&sdk.PacketFragment == 0 && (p.proto == sdk.ProtoTCP || p.proto == sdk.ProtoUDP) {
			s.dstP[p.dport] = true
			s.srcP[p.sport] = true
		}
		d := get(key{st, netip.MustParseAddr(p.dst)})
		d.in = append(d.in, i)
		if lat, ok := r.hs[i]; ok {
			d.hs = append(d.hs, lat)
		}
	}
	var keys []key
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y key) int {
		if c := cmpI64(x.start, y.start); c != 0 {
			return c
		}
		return x.addr.Compare(y.addr)
	})
	var out []sdk.FeatureRow
	secs := size.Seconds()
	for _, k := range keys {
		a := m[k]
		v := make(map[string]float64)
		var lens, times []float64
		n := func(cond func(P) bool) (c float64) {
			for _, i := range a.out {
				if cond(r.pkts[i]) {
					c++
				}
			}
			return
		}
		bytesOf := func(cond func(P) bool) (c float64) {
			for _, i := range a.out {
				if cond(r.pkts[i]) {
					c += float64(r.pkts[i].length)
				}
			}
			return
		}
		all := func(P) bool { return true }
		for _, i := range a.out {
			lens = append(lens, float64(r.pkts[i].length))
			times = append(times, float64(r.pkts[i].ts-t0)) // relative: float64 of ~1.7e18 ns would round to 256 ns
		}
		v[sdk.FeaturePackets] = float64(len(a.out))
		v[sdk.FeatureBytes] = bytesOf(all)
		v[sdk.FeaturePacketRate] = float64(len(a.out)) / secs
		v[sdk.FeatureBandwidth] = bytesOf(all) * 8 / secs
		v[sdk.FeaturePacketSizeMean], v[sdk.FeaturePacketSizeStd] = meanStd(lens)
		v[sdk.FeaturePacketSizeMin], v[sdk.FeaturePacketSizeMax] = math.NaN(), math.NaN()
		if len(lens) > 0 {
			v[sdk.FeaturePacketSizeMin], v[sdk.FeaturePacketSizeMax] = slices.Min(lens), slices.Max(lens)
		}
		var gaps []float64
		for i := 1; i < len(times); i++ {
			gaps = append(gaps, (times[i]-times[i-1])/1e6)
		}
		v[sdk.FeatureIATMean], v[sdk.FeatureIATStd] = meanStd(gaps)
		var hs []float64
		for _, l := range a.hs {
			hs = append(hs, float64(l)/1e6)
		}
		v[sdk.FeatureHandshakeLatency], _ = meanStd(hs)
		v[sdk.FeatureHandshakes] = float64(len(hs))
		isP := func(pr ...uint8) func(P) bool { return func(p P) bool { return slices.Contains(pr, p.proto) } }
		other := func(p P) bool { return !slices.Contains([]uint8{6, 17, 1, 58}, p.proto) }
		v[sdk.FeatureTCPPackets], v[sdk.FeatureTCPBytes] = n(isP(6)), bytesOf(isP(6))
		v[sdk.FeatureUDPPackets], v[sdk.FeatureUDPBytes] = n(isP(17)), bytesOf(isP(17))
		v[sdk.FeatureICMPPackets], v[sdk.FeatureICMPBytes] = n(isP(1, 58)), bytesOf(isP(1, 58))
		v[sdk.FeatureOtherPackets], v[sdk.FeatureOtherBytes] = n(other), bytesOf(other)
		tcpf := func(f func(uint8) bool) func(P) bool {
			return func(p P) bool { return p.proto == 6 && p.flags&sdk.PacketFragment == 0 && f(p.tcp) }
		}
		v[sdk.FeatureSYN] = n(tcpf(func(f uint8) bool { return f&sdk.TCPSyn != 0 && f&sdk.TCPAck == 0 }))
		v[sdk.FeatureSYNACK] = n(tcpf(func(f uint8) bool { return f&sdk.TCPSyn != 0 && f&sdk.TCPAck != 0 }))
		v[sdk.FeatureFIN] = n(tcpf(func(f uint8) bool { return f&sdk.TCPFin != 0 }))
		v[sdk.FeatureRST] = n(tcpf(func(f uint8) bool { return f&sdk.TCPRst != 0 }))
		v[sdk.FeaturePSH] = n(tcpf(func(f uint8) bool { return f&sdk.TCPPsh != 0 }))
		v[sdk.FeatureACK] = n(tcpf(func(f uint8) bool { return f&sdk.TCPAck != 0 }))
		v[sdk.FeatureDistinctDstIPs] = float64(len(a.dstIP))
		v[sdk.FeatureDistinctDstPorts] = float64(len(a.dstP))
		v[sdk.FeatureDistinctSrcPorts] = float64(len(a.srcP))
		v[sdk.FeatureDNSQueries] = n(func(p P) bool { return p.flags&sdk.PacketDNSQuery != 0 })
		var inB, inRST, inUn float64
		for _, i := range a.in {
			p := r.pkts[i]
			inB += float64(p.length)
			if p.proto == 6 && p.flags&sdk.PacketFragment == 0 && p.tcp&sdk.TCPRst != 0 {
				inRST++
			}
			if p.flags&sdk.PacketFragment == 0 && ((p.proto == 1 && p.sport == 3) || (p.proto == 58 && p.sport == 1)) {
				inUn++
			}
		}
		v[sdk.FeatureInPackets], v[sdk.FeatureInBytes] = float64(len(a.in)), inB
		v[sdk.FeatureInRST], v[sdk.FeatureInICMPUnreach] = inRST, inUn
		row := sdk.FeatureRow{Src: k.addr, Start: time.Unix(0, k.start).UTC(), End: time.Unix(0, k.start+sz).UTC()}
		if k.start+sz > r.maxTs {
			row.Flags |= sdk.WindowPartial
		}
		if len(a.dstIP) > r.limit {
			row.Flags |= sdk.WindowEstimated
		}
		for _, name := range sdk.Features {
			row.Values = append(row.Values, v[name])
		}
		out = append(out, row)
	}
	return out
}

// meanStd returns the mean and population standard deviation (two-pass),
// NaN, NaN for no values.
func meanStd(x []float64) (float64, float64) {
	if len(x) == 0 {
		return math.NaN(), math.NaN()
	}
	var s float64
	for _, v := range x {
		s += v
	}
	m := s / float64(len(x))
	var q float64
	for _, v := range x {
		q += (v - m) * (v - m)
	}
	return m, math.Sqrt(q / float64(len(x)))
}
