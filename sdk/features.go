package sdk

import (
	"net/netip"
	"time"
)

// FeatureSchemaVersion is the version of the feature set below. It grows
// when features are added; existing names never change meaning. Detectors
// receive features by name, so new features never break them.
const FeatureSchemaVersion = 1

// Feature names. The suffix is the unit: _total is a count in the window,
// _bytes bytes, _ms milliseconds, _pps packets per second, _bps bits per
// second. Every feature is documented in docs/features.md.
const (
	FeaturePackets          = "packets_total"
	FeatureBytes            = "bytes_total"
	FeaturePacketRate       = "packet_rate_pps"
	FeatureBandwidth        = "bandwidth_bps"
	FeaturePacketSizeMean   = "packet_size_mean_bytes"
	FeaturePacketSizeStd    = "packet_size_std_bytes"
	FeaturePacketSizeMin    = "packet_size_min_bytes"
	FeaturePacketSizeMax    = "packet_size_max_bytes"
	FeatureIATMean          = "iat_mean_ms"
	FeatureIATStd           = "iat_std_ms" // jitter
	FeatureHandshakeLatency = "tcp_handshake_latency_ms"
	FeatureHandshakes       = "tcp_handshakes_total"
	FeatureTCPPackets       = "tcp_packets_total"
	FeatureUDPPackets       = "udp_packets_total"
	FeatureICMPPackets      = "icmp_packets_total"
	FeatureOtherPackets     = "other_packets_total"
	FeatureTCPBytes         = "tcp_bytes_total"
	FeatureUDPBytes         = "udp_bytes_total"
	FeatureICMPBytes        = "icmp_bytes_total"
	FeatureOtherBytes       = "other_bytes_total"
	FeatureSYN              = "syn_total"
	FeatureSYNACK           = "synack_total"
	FeatureFIN              = "fin_total"
	FeatureRST              = "rst_total"
	FeaturePSH              = "psh_total"
	FeatureACK              = "ack_total"
	FeatureDistinctDstIPs   = "distinct_dst_ips_total"
	FeatureDistinctDstPorts = "distinct_dst_ports_total"
	FeatureDistinctSrcPorts = "distinct_src_ports_total"
	FeatureDNSQueries       = "dns_queries_total"
	FeatureInPackets        = "in_packets_total"
	FeatureInBytes          = "in_bytes_total"
	FeatureInRST            = "in_rst_total"
	FeatureInICMPUnreach    = "in_icmp_unreachable_total"
)

// Features lists every feature of FeatureSchemaVersion in its canonical order.
var Features = []string{
	FeaturePackets, FeatureBytes, FeaturePacketRate, FeatureBandwidth,
	FeaturePacketSizeMean, FeaturePacketSizeStd, FeaturePacketSizeMin, FeaturePacketSizeMax,
	FeatureIATMean, FeatureIATStd, FeatureHandshakeLatency, FeatureHandshakes,
	FeatureTCPPackets, FeatureUDPPackets, FeatureICMPPackets, FeatureOtherPackets,
	FeatureTCPBytes, FeatureUDPBytes, FeatureICMPBytes, FeatureOtherBytes,
	FeatureSYN, FeatureSYNACK, FeatureFIN, FeatureRST, FeaturePSH, FeatureACK,
	FeatureDistinctDstIPs, FeatureDistinctDstPorts, FeatureDistinctSrcPorts,
	FeatureDNSQueries, FeatureInPackets, FeatureInBytes, FeatureInRST, FeatureInICMPUnreach,
}

// KnownFeature reports whether name is a feature of this schema.
func KnownFeature(name string) bool {
	for _, f := range Features {
		if f == name {
			return true
		}
	}
	return false
}

// Window sizes the core computes.
var WindowSizes = []time.Duration{5 * time.Second, 30 * time.Second, 180 * time.Second}

// WindowFlags qualify a window record.
type WindowFlags uint32

const (
	// WindowPartial: the window was flushed before its end (shutdown, or
	// the input ended before the window's end).
	WindowPartial WindowFlags = 1 << iota
	// WindowEstimated: a distinct count passed the exact bound and comes
	// from a HyperLogLog sketch.
	WindowEstimated
)

// FeatureBatch is a batch of closed windows of one size. Names are listed
// once; each row's Values follow their order.
type FeatureBatch struct {
	Sensor        string
	Window        time.Duration
	SchemaVersion uint32
	Names         []string
	Rows          []FeatureRow
}

// FeatureRow is one source's window.
type FeatureRow struct {
	Src        netip.Addr
	Start, End time.Time
	Flags      WindowFlags
	Values     []float64
	// Sensor is set when the row comes from another sensor than the batch
	// (store queries over many sensors).
	Sensor string
}

// Index returns the position of feature name in b.Names, or -1.
func (b *FeatureBatch) Index(name string) int {
	for i, n := range b.Names {
		if n == name {
			return i
		}
	}
	return -1
}

// Value returns feature name of row i, and false when the batch lacks it.
func (b *FeatureBatch) Value(i int, name string) (float64, bool) {
	j := b.Index(name)
	if j < 0 || i < 0 || i >= len(b.Rows) || j >= len(b.Rows[i].Values) {
		return 0, false
	}
	return b.Rows[i].Values[j], true
}

// Vector reads features of a row by name through a precomputed index, for
// detectors that read the same features from every row.
type Vector struct{ idx []int }

// NewVector resolves names against b once; Get then costs an array access.
func NewVector(b *FeatureBatch, names ...string) Vector {
	v := Vector{idx: make([]int, len(names))}
	for i, n := range names {
		v.idx[i] = b.Index(n)
	}
	return v
}

// Get returns the k-th named feature of row, or NaN when the batch lacks it.
func (v Vector) Get(row FeatureRow, k int) float64 {
	j := v.idx[k]
	if j < 0 || j >= len(row.Values) {
		return nan
	}
	return row.Values[j]
}
