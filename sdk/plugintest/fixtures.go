package plugintest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"strings"
	"time"

	"github.com/netguardian/netguardian/sdk"
)

// FixtureStart is the start of the windows Batch builds.
var FixtureStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Batch builds a FeatureBatch of window size window as the core sends it:
// every feature of sdk.Features, in their canonical order, one row per
// map. A feature a map leaves out is 0. Row i's source is 10.0.x.y with
// x.y = i+1 (set Rows[i].Src to choose another); every row spans
// [FixtureStart, FixtureStart+window).
//
// Fixtures are literals in tests, so Batch panics, like regexp.MustCompile,
// on a feature name the SDK does not know, with the list of known names.
func Batch(window time.Duration, rows ...map[string]float64) *sdk.FeatureBatch {
	if window <= 0 {
		panic(fmt.Sprintf("plugintest.Batch: window %s is not positive", window))
	}
	b := &sdk.FeatureBatch{Sensor: "plugintest", Window: window, SchemaVersion: sdk.FeatureSchemaVersion, Names: append([]string(nil), sdk.Features...)}
	for i, m := range rows {
		values := make([]float64, len(sdk.Features))
		for name, v := range m {
			j := b.Index(name)
			if j < 0 {
				panic(fmt.Sprintf("plugintest.Batch: row %d: unknown feature %q; feature schema version %d knows: %s",
					i, name, sdk.FeatureSchemaVersion, strings.Join(sdk.Features, ", ")))
			}
			values[j] = v
		}
		b.Rows = append(b.Rows, sdk.FeatureRow{Src: fixtureAddr(i), Start: FixtureStart, End: FixtureStart.Add(window), Values: values})
	}
	return b
}

func fixtureAddr(i int) netip.Addr {
	n := i + 1
	return netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)})
}

// typicalRow is the features of a source that sent n packets of a typical
// mix in a window of size w: consistent enough that a detector computing
// ratios sees sensible numbers.
func typicalRow(r *rand.Rand, n float64, w time.Duration) map[string]float64 {
	size := 60 + r.Float64()*1400
	bytes := n * size
	tcp := math.Round(n * r.Float64())
	udp := math.Round((n - tcp) * r.Float64())
	icmp := math.Round((n - tcp - udp) * r.Float64())
	other := n - tcp - udp - icmp
	syn := math.Round(tcp * r.Float64() * 0.3)
	secs := w.Seconds()
	iat := math.NaN()
	if n >= 2 {
		iat = secs * 1000 / n
	}
	return map[string]float64{
		sdk.FeaturePackets: n, sdk.FeatureBytes: bytes, sdk.FeaturePacketRate: n / secs, sdk.FeatureBandwidth: 8 * bytes / secs,
		sdk.FeaturePacketSizeMean: size, sdk.FeaturePacketSizeStd: size / 4, sdk.FeaturePacketSizeMin: 60, sdk.FeaturePacketSizeMax: math.Min(1514, 2*size),
		sdk.FeatureIATMean: iat, sdk.FeatureIATStd: iat / 2, sdk.FeatureHandshakeLatency: 0.2 + 50*r.Float64(), sdk.FeatureHandshakes: syn,
		sdk.FeatureTCPPackets: tcp, sdk.FeatureUDPPackets: udp, sdk.FeatureICMPPackets: icmp, sdk.FeatureOtherPackets: other,
		sdk.FeatureTCPBytes: tcp * size, sdk.FeatureUDPBytes: udp * size, sdk.FeatureICMPBytes: icmp * size, sdk.FeatureOtherBytes: other * size,
		sdk.FeatureSYN: syn, sdk.FeatureSYNACK: math.Round(syn * r.Float64()), sdk.FeatureFIN: syn, sdk.FeatureRST: math.Round(syn * r.Float64() * 0.1),
		sdk.FeaturePSH: math.Round(tcp * 0.2), sdk.FeatureACK: math.Max(0, tcp-syn),
		sdk.FeatureDistinctDstIPs: math.Ceil(n * r.Float64() * 0.1), sdk.FeatureDistinctDstPorts: math.Ceil(n * r.Float64() * 0.1),
		sdk.FeatureDistinctSrcPorts: math.Ceil(syn + udp*0.5), sdk.FeatureDNSQueries: math.Round(udp * r.Float64()),
		sdk.FeatureInPackets: math.Round(n * r.Float64() * 2), sdk.FeatureInBytes: math.Round(bytes * r.Float64() * 2),
		sdk.FeatureInRST: math.Round(syn * r.Float64() * 0.1), sdk.FeatureInICMPUnreach: math.Round(udp * r.Float64() * 0.1),
	}
}

// inboundOnlyRow is the record of an address only seen as a destination:
// no packets of its own, undefined outbound statistics, inbound counters set.
func inboundOnlyRow() map[string]float64 {
	m := map[string]float64{sdk.FeatureInPackets: 120, sdk.FeatureInBytes: 9000, sdk.FeatureInRST: 3, sdk.FeatureInICMPUnreach: 1}
	for _, f := range []string{sdk.FeaturePacketSizeMean, sdk.FeaturePacketSizeStd, sdk.FeaturePacketSizeMin, sdk.FeaturePacketSizeMax,
		sdk.FeatureIATMean, sdk.FeatureIATStd, sdk.FeatureHandshakeLatency} {
		m[f] = math.NaN()
	}
	return m
}

// Fixture is one batch a suite sends a detector.
type Fixture struct {
	Name  string
	Batch *sdk.FeatureBatch
	// Check, when set, is called with the fixture's alerts, their core
	// fields (Src, Window, Start, End) filled as the pipeline fills them.
	Check func(t TB, alerts []sdk.Alert)
}

// StandardFixtures are the batches every detector must survive, for a
// detector subscribed to windows: empty; one typical row per window size;
// large (rows typical rows); rows with NaN values (all NaN, some NaN);
// inbound-only rows; unusual sources (IPv6, loopback, unspecified,
// broadcast, link-local, multicast); extreme values (all zero, huge counts,
// partial and estimated windows). They are deterministic.
func StandardFixtures(windows []time.Duration, rows int) []Fixture {
	r := rand.New(rand.NewPCG(7, 11))
	w := windows[0]
	var out []Fixture
	add := func(name string, b *sdk.FeatureBatch) { out = append(out, Fixture{Name: name, Batch: b}) }

	add("empty", Batch(w))
	for _, ws := range windows {
		add(fmt.Sprintf("one row, %gs window", ws.Seconds()), Batch(ws, typicalRow(r, 250, ws)))
	}

	large := make([]map[string]float64, rows)
	for i := range large {
		large[i] = typicalRow(r, math.Round(1+math.Exp(r.Float64()*10)), w)
	}
	add(fmt.Sprintf("%d rows", rows), Batch(w, large...))

	allNaN := map[string]float64{}
	for _, f := range sdk.Features {
		allNaN[f] = math.NaN()
	}
	someNaN := typicalRow(r, 1, w) // one packet: no inter-arrival time
	someNaN[sdk.FeatureHandshakeLatency] = math.NaN()
	add("NaN values", Batch(w, allNaN, someNaN, typicalRow(r, 40, w)))

	add("inbound-only rows", Batch(w, inboundOnlyRow(), inboundOnlyRow()))

	odd := []string{"2001:db8::1", "::1", "::", "0.0.0.0", "255.255.255.255", "fe80::1", "ff02::1", "224.0.0.251", "127.0.0.1", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"}
	oddRows := make([]map[string]float64, len(odd))
	for i := range oddRows {
		oddRows[i] = typicalRow(r, 500, w)
	}
	b := Batch(w, oddRows...)
	for i, s := range odd {
		b.Rows[i].Src = netip.MustParseAddr(s)
	}
	add("unusual sources (IPv6, unspecified, broadcast, multicast)", b)

	zero := map[string]float64{}
	huge := typicalRow(r, 1e12, w)
	b = Batch(w, zero, huge, typicalRow(r, 3, w))
	b.Rows[1].Flags = sdk.WindowEstimated
	b.Rows[2].Flags = sdk.WindowPartial
	add("extreme values (zero, 1e12 packets, partial and estimated windows)", b)
	return out
}
