package storetest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/netguardian/netguardian/sdk"
)

// Sensor names used by the fixture. SensorA is the main sensor; SensorB sees
// some of the same sources, so rows differ only by sensor.
const (
	SensorA = "test-sensor"
	SensorB = "edge-2"
)

var (
	// fixtureBase is aligned to 180s (and so to 5s and 30s) since the epoch.
	fixtureBase = time.Date(2025, time.March, 1, 10, 0, 0, 0, time.UTC)
	fixtureSpan = 2 * time.Hour
	chunk       = 10 * time.Minute // one batch per sensor, window size and chunk

	sourcesA = addrs("10.0.0.1", "10.0.0.2", "10.0.0.10", "192.168.1.5",
		"2001:db8::1", "2001:db8::2", "2001:db8::a", "2001:db8:1::5")
	sourcesB = addrs("10.0.0.1", "172.16.0.9", "2001:db8::1")

	labels     = []string{"portscan", "ddos", "bruteforce", "dns_tunnel"}
	severities = []sdk.Severity{sdk.SeverityLow, sdk.SeverityMedium, sdk.SeverityHigh, sdk.SeverityCritical}

	featureIndex = func() map[string]int {
		m := make(map[string]int, len(sdk.Features))
		for i, n := range sdk.Features {
			m[n] = i
		}
		return m
	}()
)

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

// fxRow is one stored window as the suite expects it back. Values follow
// sdk.Features and are a copy independent of the appended batch.
type fxRow struct {
	Sensor string
	Window time.Duration
	Src    netip.Addr
	Start  time.Time
	End    time.Time
	Flags  sdk.WindowFlags
	Values []float64
}

func cmpRows(a, b fxRow) int {
	if c := a.Start.Compare(b.Start); c != 0 {
		return c
	}
	if c := a.Src.Compare(b.Src); c != 0 {
		return c
	}
	return strings.Compare(a.Sensor, b.Sensor)
}

// featureFixture is the feature data: batches in append order and every
// distinct row, sorted by (Start, Src, Sensor).
type featureFixture struct {
	batches []*sdk.FeatureBatch
	rows    []fxRow
}

// additive features are sums, so a 30s or 180s row sums its 5s rows' values.
var additive = []string{
	sdk.FeaturePackets, sdk.FeatureBytes, sdk.FeatureHandshakes,
	sdk.FeatureTCPPackets, sdk.FeatureUDPPackets, sdk.FeatureICMPPackets, sdk.FeatureOtherPackets,
	sdk.FeatureTCPBytes, sdk.FeatureUDPBytes, sdk.FeatureICMPBytes, sdk.FeatureOtherBytes,
	sdk.FeatureSYN, sdk.FeatureSYNACK, sdk.FeatureFIN, sdk.FeatureRST, sdk.FeaturePSH, sdk.FeatureACK,
	sdk.FeatureDNSQueries, sdk.FeatureInPackets, sdk.FeatureInBytes, sdk.FeatureInRST, sdk.FeatureInICMPUnreach,
}

func set(v []float64, name string, x float64) { v[featureIndex[name]] = x }
func get(v []float64, name string) float64    { return v[featureIndex[name]] }

// fiveSecondValues draws one plausible 5s window. Non-count features get
// full-precision random fractions so that any rounding shows.
func fiveSecondValues(rng *rand.Rand) ([]float64, sdk.WindowFlags) {
	v := make([]float64, len(sdk.Features))
	for i := range v {
		v[i] = rng.Float64() * 100
	}
	tcp, udp, icmp, other := rng.IntN(40), rng.IntN(20), rng.IntN(3), rng.IntN(2)
	if tcp+udp+icmp+other == 0 {
		tcp = 1
	}
	tcpB, udpB := tcp*(40+rng.IntN(1461)), udp*(28+rng.IntN(1000))
	icmpB, otherB := icmp*(28+rng.IntN(100)), other*(20+rng.IntN(500))
	set(v, sdk.FeatureTCPPackets, float64(tcp))
	set(v, sdk.FeatureUDPPackets, float64(udp))
	set(v, sdk.FeatureICMPPackets, float64(icmp))
	set(v, sdk.FeatureOtherPackets, float64(other))
	set(v, sdk.FeatureTCPBytes, float64(tcpB))
	set(v, sdk.FeatureUDPBytes, float64(udpB))
	set(v, sdk.FeatureICMPBytes, float64(icmpB))
	set(v, sdk.FeatureOtherBytes, float64(otherB))
	set(v, sdk.FeaturePackets, float64(tcp+udp+icmp+other))
	set(v, sdk.FeatureBytes, float64(tcpB+udpB+icmpB+otherB))
	hs := rng.IntN(3)
	set(v, sdk.FeatureHandshakes, float64(hs))
	if hs == 0 {
		set(v, sdk.FeatureHandshakeLatency, math.NaN()) // no handshake: missing, not zero
	}
	for _, n := range []string{sdk.FeatureSYN, sdk.FeatureSYNACK, sdk.FeatureFIN, sdk.FeatureRST,
		sdk.FeaturePSH, sdk.FeatureACK, sdk.FeatureDNSQueries, sdk.FeatureInRST, sdk.FeatureInICMPUnreach} {
		set(v, n, float64(rng.IntN(10)))
	}
	if rng.IntN(4) == 0 {
		set(v, sdk.FeatureInPackets, math.NaN()) // never seen as a destination
		set(v, sdk.FeatureInBytes, math.NaN())
	} else {
		set(v, sdk.FeatureInPackets, float64(rng.IntN(30)))
		set(v, sdk.FeatureInBytes, float64(rng.IntN(30000)))
	}
	var flags sdk.WindowFlags
	dst := rng.IntN(60)
	set(v, sdk.FeatureDistinctDstIPs, float64(dst))
	if dst > 50 {
		flags |= sdk.WindowEstimated
	}
	derive(v, 5*time.Second)
	return v, flags
}

// derive recomputes the features that follow from the sums.
func derive(v []float64, w time.Duration) {
	pk, by := get(v, sdk.FeaturePackets), get(v, sdk.FeatureBytes)
	set(v, sdk.FeaturePacketRate, pk/w.Seconds())
	set(v, sdk.FeatureBandwidth, by*8/w.Seconds())
	set(v, sdk.FeaturePacketSizeMean, by/pk)
}

// sumNaN adds b to a where NaN means missing: missing + missing stays missing.
func sumNaN(a, b float64) float64 {
	switch {
	case math.IsNaN(a):
		return b
	case math.IsNaN(b):
		return a
	}
	return a + b
}

func epochFloor(t time.Time, d time.Duration) time.Time {
	ns := t.UnixNano()
	return time.Unix(0, ns-ns%int64(d)).UTC()
}

// buildFeatures generates the feature fixture deterministically.
func buildFeatures() *featureFixture {
	rng := rand.New(rand.NewPCG(2025, 3))
	const w5 = 5 * time.Second
	lastStart := fixtureBase.Add(fixtureSpan - w5)
	var rows []fxRow
	for _, sensor := range []string{SensorA, SensorB} {
		srcs := sourcesA
		if sensor == SensorB {
			srcs = sourcesB
		}
		for _, src := range srcs {
			// parents collects the 30s and 180s rows built from this source's 5s rows.
			parents := map[time.Duration]map[time.Time]*fxRow{30 * time.Second: {}, 180 * time.Second: {}}
			first := true
			for start := fixtureBase; start.Before(fixtureBase.Add(fixtureSpan)); start = start.Add(w5) {
				if rng.IntN(10) >= 3 {
					continue
				}
				v, flags := fiveSecondValues(rng)
				end := start.Add(w5)
				if start.Equal(lastStart) {
					flags |= sdk.WindowPartial // the input ended inside this window
					end = start.Add(3*time.Second + 250*time.Millisecond)
				}
				if first && sensor == SensorA {
					// Extremes in features no query sums: they must survive exactly.
					set(v, sdk.FeatureIATStd, math.MaxFloat64)
					set(v, sdk.FeatureHandshakeLatency, math.SmallestNonzeroFloat64)
					set(v, sdk.FeatureIATMean, -1.25e-7)
				}
				first = false
				rows = append(rows, fxRow{Sensor: sensor, Window: w5, Src: src, Start: start, End: end, Flags: flags, Values: v})
				for w, m := range parents {
					ps := epochFloor(start, w)
					p := m[ps]
					if p == nil {
						pv := make([]float64, len(v))
						for i := range pv {
							pv[i] = rng.Float64() * 1000
						}
						for _, n := range additive {
							set(pv, n, math.NaN())
						}
						p = &fxRow{Sensor: sensor, Window: w, Src: src, Start: ps, End: ps.Add(w), Values: pv}
						m[ps] = p
					}
					for _, n := range additive {
						set(p.Values, n, sumNaN(get(p.Values, n), get(v, n)))
					}
					p.Flags |= flags
					if flags&sdk.WindowPartial != 0 {
						p.End = end
					}
				}
			}
			for w, m := range parents {
				for _, p := range m {
					derive(p.Values, w)
					rows = append(rows, *p)
				}
			}
		}
	}
	slices.SortFunc(rows, func(a, b fxRow) int {
		if c := cmp.Compare(a.Window, b.Window); c != 0 {
			return c
		}
		return cmpRows(a, b)
	})

	// Batches: per sensor, chunk and window size, rows shuffled inside a
	// batch. SensorA swaps chunks 2 and 3 and SensorB arrives last, newest
	// chunk first: late data must land in order.
	type key struct {
		sensor string
		w      time.Duration
		chunk  int
	}
	groups := map[key][]fxRow{}
	for _, r := range rows {
		k := key{r.Sensor, r.Window, int(r.Start.Sub(fixtureBase) / chunk)}
		groups[k] = append(groups[k], r)
	}
	nChunks := int(fixtureSpan / chunk)
	orderA := make([]int, nChunks)
	orderB := make([]int, nChunks)
	for i := range orderA {
		orderA[i] = i
		orderB[i] = nChunks - 1 - i
	}
	orderA[2], orderA[3] = 3, 2
	f := &featureFixture{}
	for _, sensor := range []string{SensorA, SensorB} {
		order := orderA
		if sensor == SensorB {
			order = orderB
		}
		for _, c := range order {
			for _, w := range sdk.WindowSizes {
				g := groups[key{sensor, w, c}]
				if len(g) == 0 {
					continue
				}
				b := &sdk.FeatureBatch{Sensor: sensor, Window: w, SchemaVersion: sdk.FeatureSchemaVersion, Names: slices.Clone(sdk.Features)}
				for _, r := range g {
					b.Rows = append(b.Rows, sdk.FeatureRow{Src: r.Src, Start: r.Start, End: r.End, Flags: r.Flags, Values: slices.Clone(r.Values)})
				}
				rng.Shuffle(len(b.Rows), func(i, j int) { b.Rows[i], b.Rows[j] = b.Rows[j], b.Rows[i] })
				f.batches = append(f.batches, b)
			}
		}
	}
	f.rows = rows
	return f
}

// alertFixture holds alerts in append order (batches) and newest first
// (sorted), as the contract orders them.
type alertFixture struct {
	batches [][]sdk.Alert
	sorted  []sdk.Alert
	byID    map[string]sdk.Alert
}

const fixtureAlerts = 61

// cmpAlertsNewestFirst is the contract's order: Time, then ID, descending.
func cmpAlertsNewestFirst(a, b sdk.Alert) int {
	if c := b.Time.Compare(a.Time); c != 0 {
		return c
	}
	return strings.Compare(b.ID, a.ID)
}

// buildAlerts generates alerts deterministically. Alerts come in groups of
// three sharing a Time, so the ID tiebreak decides their order.
func buildAlerts() *alertFixture {
	rng := rand.New(rand.NewPCG(7, 11))
	srcs := append(slices.Clone(sourcesA), sourcesB[1])
	f := &alertFixture{byID: map[string]sdk.Alert{}}
	var all []sdk.Alert
	for k := 0; k < fixtureAlerts; k++ {
		g := k / 3
		at := fixtureBase.Add(200*time.Second + time.Duration(g)*97*time.Second + 123*time.Millisecond)
		w := sdk.WindowSizes[rng.IntN(len(sdk.WindowSizes))]
		end := epochFloor(at.Add(-1500*time.Millisecond), w)
		a := sdk.Alert{
			Row:      rng.IntN(50), // not part of the contract: must not matter
			Label:    labels[rng.IntN(len(labels))],
			Score:    rng.Float64(),
			Severity: severities[k%len(severities)],
			ID:       fmt.Sprintf("%016x", rng.Uint64()),
			Sensor:   SensorA,
			Detector: "xgboost",
			Src:      srcs[rng.IntN(len(srcs))],
			Window:   w,
			Start:    end.Add(-w),
			End:      end,
			Time:     at,
		}
		if k%5 == 4 {
			a.Sensor = SensorB
		}
		if k%2 == 1 {
			a.Detector = "rules"
		}
		if k%4 != 3 {
			a.RunnerUp = labels[rng.IntN(len(labels))]
			a.RunnerUpScore = rng.Float64() * a.Score
		}
		for i := 0; i < k%4; i++ {
			a.TopFeatures = append(a.TopFeatures, sdk.FeatureValue{
				Name: sdk.Features[rng.IntN(len(sdk.Features))], Value: rng.Float64() * 1e6, Weight: rng.Float64(),
			})
		}
		if k%7 == 2 {
			// A detector may explain with a missing feature; NaN is not JSON,
			// so a store must not keep top features as plain JSON numbers.
			a.TopFeatures = append(a.TopFeatures, sdk.FeatureValue{Name: sdk.FeatureHandshakeLatency, Value: math.NaN(), Weight: 0.5})
		}
		switch k % 3 {
		case 0:
			a.Details = json.RawMessage(fmt.Sprintf(`{"model": "xgb-v1", "trees": %d, "threshold": 0.5, "tags": ["a", "b"], "k": %d}`, 100+k, k))
		case 1:
			a.Details = json.RawMessage(`{"z":1,"a":{"nested":[1,2,3]},"s":"quote \" and unicode é"}`)
		}
		f.byID[a.ID] = cloneAlert(a)
		f.sorted = append(f.sorted, cloneAlert(a))
		all = append(all, a)
	}
	slices.SortFunc(f.sorted, cmpAlertsNewestFirst)
	// Append in random order, in batches of 8.
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	for len(all) > 0 {
		n := min(8, len(all))
		f.batches = append(f.batches, all[:n:n])
		all = all[n:]
	}
	return f
}

// cloneAlert copies a's slices, so expectations stay put when the suite
// scribbles over appended alerts.
func cloneAlert(a sdk.Alert) sdk.Alert {
	a.TopFeatures = slices.Clone(a.TopFeatures)
	a.Details = slices.Clone(a.Details)
	return a
}
