package window

import (
	"math"
	"math/bits"

	"github.com/netguardian/netguardian/sdk"
)

// u128 is an unsigned 128-bit integer, for exact sums of squares.
type u128 struct{ hi, lo uint64 }

func (x *u128) add(y u128) {
	var c uint64
	x.lo, c = bits.Add64(x.lo, y.lo, 0)
	x.hi, _ = bits.Add64(x.hi, y.hi, c)
}

func (x *u128) addU64(v uint64) { x.add(u128{0, v}) }

func (x *u128) addSq(v uint64) {
	hi, lo := bits.Mul64(v, v)
	x.add(u128{hi, lo})
}

func (x u128) float() float64 { return float64(x.hi)*0x1p64 + float64(x.lo) }

// variance returns the population variance of n values whose sum is s1 and
// sum of squares s2: (n·s2 − s1²) / n², with the numerator computed exactly
// in 192 bits and rounded once. n must be > 0.
func variance(n, s1 uint64, s2 u128) float64 {
	h1, w0 := bits.Mul64(n, s2.lo)
	h2, l2 := bits.Mul64(n, s2.hi)
	w1, c := bits.Add64(l2, h1, 0)
	w2 := h2 + c
	qh, ql := bits.Mul64(s1, s1)
	var b uint64
	w0, b = bits.Sub64(w0, ql, 0)
	w1, b = bits.Sub64(w1, qh, b)
	w2, b = bits.Sub64(w2, 0, b)
	if b != 0 { // impossible by Cauchy–Schwarz; guard anyway
		return 0
	}
	d := float64(w2)*0x1p128 + float64(w1)*0x1p64 + float64(w0)
	nf := float64(n)
	return d / nf / nf
}

// Counter slots of an accumulator: byte counts (64-bit) ...
const (
	cBytes = iota
	cTCPBytes
	cUDPBytes
	cICMPBytes
	cInBytes
	nByteCounters
)

// ... and packet counts (32-bit, see acc.c).
const (
	cPackets = iota
	cTCP
	cUDP
	cICMP
	cSYN
	cSYNACK
	cFIN
	cRST
	cPSH
	cACK
	cDNS
	cInPackets
	cInRST
	cInUnreach
	cHandshakes
	nCounters
)

// acc is one source's record for one window: everything needed to compute
// the features and to merge records of consecutive windows exactly.
//
// Packet counts are kept in 32 bits: a count grows by at most one per
// packet processed in the window, so it would need 2^32 packets in one
// window (24 Mpps for 180 s) to overflow. Should one overflow anyway, the
// carry goes to hi, high words allocated on the first overflow, so counts
// stay exact (see count, inc, addCount).
type acc struct {
	b      [nByteCounters]uint64
	c      [nCounters]uint32
	minLen uint32
	hi     *[nCounters]uint32 // high words of c; nil until one overflows
	sizeSq u128               // Σ length²
	iatSq  u128               // Σ (gap in ns)² between consecutive packets, time order
	hsSum  u128               // Σ handshake latencies in ns
	first  int64
	last   int64 // timestamps of the first and last packet sent
	maxLen uint32

	dstIPs, dstPorts, srcPorts dset
}

// count returns packet count k.
func (a *acc) count(k int) uint64 {
	v := uint64(a.c[k])
	if a.hi != nil {
		v |= uint64(a.hi[k]) << 32
	}
	return v
}

// inc adds d to packet count k.
func (a *acc) inc(k int, d uint32) {
	v := a.c[k] + d
	if v < d {
		a.carry(k, 1)
	}
	a.c[k] = v
}

// addCount adds d to packet count k.
func (a *acc) addCount(k int, d uint64) {
	v := uint64(a.c[k]) + d
	a.c[k] = uint32(v)
	if v>>32 != 0 {
		a.carry(k, uint32(v>>32))
	}
}

// carry adds d to the high word of packet count k.
func (a *acc) carry(k int, d uint32) {
	if a.hi == nil {
		a.hi = new([nCounters]uint32)
	}
	a.hi[k] += d
}

// out records a packet sent by the source. Packets arrive in time order.
func (a *acc) out(ts int64, length uint32) {
	if a.count(cPackets) == 0 {
		a.first = ts
		a.minLen, a.maxLen = length, length
	} else {
		a.iatSq.addSq(uint64(ts - a.last))
		a.minLen = min(a.minLen, length)
		a.maxLen = max(a.maxLen, length)
	}
	a.last = ts
	a.inc(cPackets, 1)
	a.b[cBytes] += uint64(length)
	a.sizeSq.addSq(uint64(length))
}

// merge adds b, the record of a later window of the same source, into a.
// The inter-arrival samples become a's ∪ b's ∪ {first(b) − last(a)}.
func (p *setPool) merge(a, b *acc) {
	if b.count(cPackets) > 0 {
		if a.count(cPackets) == 0 {
			a.first, a.minLen, a.maxLen = b.first, b.minLen, b.maxLen
			a.iatSq = b.iatSq
		} else {
			a.iatSq.add(b.iatSq)
			a.iatSq.addSq(uint64(b.first - a.last))
			a.minLen = min(a.minLen, b.minLen)
			a.maxLen = max(a.maxLen, b.maxLen)
		}
		a.last = b.last
		a.sizeSq.add(b.sizeSq)
	}
	for i := range a.b {
		a.b[i] += b.b[i]
	}
	if b.hi == nil {
		for i := range a.c {
			a.addCount(i, uint64(b.c[i]))
		}
	} else {
		for i := range a.c {
			a.addCount(i, b.count(i))
		}
	}
	a.hsSum.add(b.hsSum)
	p.union(&a.dstIPs, &b.dstIPs, true)
	p.union(&a.dstPorts, &b.dstPorts, false)
	p.union(&a.srcPorts, &b.srcPorts, false)
}

// clear empties a, returning its sets' storage to the pool.
func (p *setPool) clear(a *acc) {
	p.reset(&a.dstIPs)
	p.reset(&a.dstPorts)
	p.reset(&a.srcPorts)
	*a = acc{}
}

// featureNames is the order values() writes; it must equal sdk.Features
// (a test checks).
var featureNames = []string{
	sdk.FeaturePackets, sdk.FeatureBytes, sdk.FeaturePacketRate, sdk.FeatureBandwidth,
	sdk.FeaturePacketSizeMean, sdk.FeaturePacketSizeStd, sdk.FeaturePacketSizeMin, sdk.FeaturePacketSizeMax,
	sdk.FeatureIATMean, sdk.FeatureIATStd, sdk.FeatureHandshakeLatency, sdk.FeatureHandshakes,
	sdk.FeatureTCPPackets, sdk.FeatureUDPPackets, sdk.FeatureICMPPackets, sdk.FeatureOtherPackets,
	sdk.FeatureTCPBytes, sdk.FeatureUDPBytes, sdk.FeatureICMPBytes, sdk.FeatureOtherBytes,
	sdk.FeatureSYN, sdk.FeatureSYNACK, sdk.FeatureFIN, sdk.FeatureRST, sdk.FeaturePSH, sdk.FeatureACK,
	sdk.FeatureDistinctDstIPs, sdk.FeatureDistinctDstPorts, sdk.FeatureDistinctSrcPorts,
	sdk.FeatureDNSQueries, sdk.FeatureInPackets, sdk.FeatureInBytes, sdk.FeatureInRST, sdk.FeatureInICMPUnreach,
}

// values writes a's features for a window of secs seconds into v (in
// featureNames order) and returns the row's flags.
func (p *setPool) values(a *acc, secs float64, v []float64) sdk.WindowFlags {
	nan := math.NaN()
	c := func(k int) uint64 { return a.count(k) }
	n := c(cPackets)
	v[0] = float64(n)
	v[1] = float64(a.b[cBytes])
	v[2] = float64(n) / secs
	v[3] = float64(a.b[cBytes]) * 8 / secs
	if n > 0 {
		v[4] = float64(a.b[cBytes]) / float64(n)
		v[5] = math.Sqrt(variance(n, a.b[cBytes], a.sizeSq))
		v[6] = float64(a.minLen)
		v[7] = float64(a.maxLen)
	} else {
		v[4], v[5], v[6], v[7] = nan, nan, nan, nan
	}
	if n > 1 {
		span := uint64(a.last - a.first)
		v[8] = float64(span) / float64(n-1) / 1e6
		v[9] = math.Sqrt(variance(n-1, span, a.iatSq)) / 1e6
	} else {
		v[8], v[9] = nan, nan
	}
	if h := c(cHandshakes); h > 0 {
		v[10] = a.hsSum.float() / float64(h) / 1e6
	} else {
		v[10] = nan
	}
	v[11] = float64(c(cHandshakes))
	v[12] = float64(c(cTCP))
	v[13] = float64(c(cUDP))
	v[14] = float64(c(cICMP))
	v[15] = float64(n - c(cTCP) - c(cUDP) - c(cICMP))
	v[16] = float64(a.b[cTCPBytes])
	v[17] = float64(a.b[cUDPBytes])
	v[18] = float64(a.b[cICMPBytes])
	v[19] = float64(a.b[cBytes] - a.b[cTCPBytes] - a.b[cUDPBytes] - a.b[cICMPBytes])
	v[20] = float64(c(cSYN))
	v[21] = float64(c(cSYNACK))
	v[22] = float64(c(cFIN))
	v[23] = float64(c(cRST))
	v[24] = float64(c(cPSH))
	v[25] = float64(c(cACK))
	var flags sdk.WindowFlags
	var est bool
	if v[26], est = p.count(&a.dstIPs); est {
		flags |= sdk.WindowEstimated
	}
	v[27], _ = p.count(&a.dstPorts)
	v[28], _ = p.count(&a.srcPorts)
	v[29] = float64(c(cDNS))
	v[30] = float64(c(cInPackets))
	v[31] = float64(a.b[cInBytes])
	v[32] = float64(c(cInRST))
	v[33] = float64(c(cInUnreach))
	return flags
}
