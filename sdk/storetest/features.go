package storetest

import (
	"cmp"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/netguardian/netguardian/sdk"
)

const allRows = 100_000 // a limit above every fixture query's row count

func fmtFQ(q sdk.FeatureQuery) string {
	s := fmt.Sprintf("window %v", q.Window)
	if q.Src.IsValid() {
		s += " src " + q.Src.String()
	}
	if q.Range != (sdk.TimeRange{}) {
		s += " range " + fmtRange(q.Range)
	}
	if q.Limit != 0 {
		s += fmt.Sprintf(" limit %d", q.Limit)
	}
	return s
}

// wantFeatures applies q to the fixture rows (sorted by window, then the
// contract's order).
func wantFeatures(rows []fxRow, q sdk.FeatureQuery) []fxRow {
	var out []fxRow
	for _, r := range rows {
		if r.Window == q.Window && (!q.Src.IsValid() || r.Src == q.Src) && q.Range.Contains(r.Start) {
			out = append(out, r)
		}
	}
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[len(out)-q.Limit:]
	}
	return out
}

// checkFeatures runs q and compares the answer with want, row by row.
func checkFeatures(t *testing.T, st sdk.Store, q sdk.FeatureQuery, want []fxRow) {
	t.Helper()
	got, err := st.QueryFeatures(t.Context(), q)
	if err != nil {
		t.Errorf("QueryFeatures(%s): %v", fmtFQ(q), err)
		return
	}
	if got == nil {
		t.Errorf("QueryFeatures(%s) returned a nil batch", fmtFQ(q))
		return
	}
	if got.Window != q.Window {
		t.Errorf("QueryFeatures(%s): batch window %v", fmtFQ(q), got.Window)
	}
	if got.Sensor != "" {
		t.Errorf("QueryFeatures(%s): batch sensor %q, want empty (rows carry their sensor)", fmtFQ(q), got.Sensor)
	}
	if len(got.Rows) != len(want) {
		t.Errorf("QueryFeatures(%s): %d rows, want %d", fmtFQ(q), len(got.Rows), len(want))
		if len(want) > 0 && len(got.Rows) > 0 {
			t.Errorf("  first got %s, first want %s", rowKey(got.Rows[0].Sensor, got.Rows[0].Src, got.Rows[0].Start),
				rowKey(want[0].Sensor, want[0].Src, want[0].Start))
		}
		return
	}
	bad := 0
	for i := range want {
		if d := diffRow(got, i, want[i]); d != "" {
			if bad++; bad > 5 {
				t.Errorf("QueryFeatures(%s): more rows differ", fmtFQ(q))
				return
			}
			t.Errorf("QueryFeatures(%s): row %d %s: %s", fmtFQ(q), i, rowKey(want[i].Sensor, want[i].Src, want[i].Start), d)
		}
	}
}

func rowKey(sensor string, src netip.Addr, start time.Time) string {
	return fmt.Sprintf("(%s %s %s)", start.UTC().Format("15:04:05"), src, sensor)
}

// diffRow describes how row i of b differs from w ("" when it does not).
func diffRow(b *sdk.FeatureBatch, i int, w fxRow) string {
	r := b.Rows[i]
	var d []string
	if r.Sensor != w.Sensor {
		d = append(d, fmt.Sprintf("sensor %q, want %q", r.Sensor, w.Sensor))
	}
	if r.Src != w.Src {
		d = append(d, fmt.Sprintf("src %v, want %v", r.Src, w.Src))
	}
	if !r.Start.Equal(w.Start) {
		d = append(d, fmt.Sprintf("start %v, want %v", r.Start, w.Start))
	}
	if !r.End.Equal(w.End) {
		d = append(d, fmt.Sprintf("end %v, want %v", r.End, w.End))
	}
	if r.Flags != w.Flags {
		d = append(d, fmt.Sprintf("flags %b, want %b", r.Flags, w.Flags))
	}
	if len(r.Values) != len(b.Names) {
		d = append(d, fmt.Sprintf("%d values for %d names", len(r.Values), len(b.Names)))
	}
	for j, name := range sdk.Features {
		v, ok := b.Value(i, name)
		switch {
		case !ok:
			d = append(d, "no value for "+name)
		case !sameFloat(v, w.Values[j]):
			d = append(d, fmt.Sprintf("%s = %v, want %v", name, v, w.Values[j]))
		}
	}
	if len(d) > 6 {
		d = append(d[:6], fmt.Sprintf("and %d more", len(d)-6))
	}
	return strings.Join(d, "; ")
}

// scribble overwrites appended batches, which the store must have copied.
func scribble(batches []*sdk.FeatureBatch) {
	for _, b := range batches {
		for i := range b.Rows {
			for j := range b.Rows[i].Values {
				b.Rows[i].Values[j] = -7
			}
		}
		slices.Reverse(b.Names)
	}
}

func testFeatures(t *testing.T, h Harness) {
	st, ap := open(t, h)
	fx := buildFeatures()
	checkFeatureFixture(t, fx)
	appendFeatures(t, ap, fx.batches...)
	flush(t, ap)
	scribble(fx.batches)
	rows := fx.rows
	t0 := fixtureBase

	t.Run("Window", func(t *testing.T) {
		for _, w := range sdk.WindowSizes {
			q := sdk.FeatureQuery{Window: w, Limit: allRows}
			checkFeatures(t, st, q, wantFeatures(rows, q))
		}
	})
	t.Run("UnknownWindow", func(t *testing.T) {
		checkFeatures(t, st, sdk.FeatureQuery{Window: time.Minute}, nil)
	})
	t.Run("DefaultLimit", func(t *testing.T) {
		q := sdk.FeatureQuery{Window: 180 * time.Second}
		want := wantFeatures(rows, q)
		fatalIf(t, len(want) == 0 || len(want) > 1000, "%d rows of 180s, want 1..1000", len(want))
		checkFeatures(t, st, q, want)
	})
	t.Run("Names", func(t *testing.T) {
		b, err := st.QueryFeatures(t.Context(), sdk.FeatureQuery{Window: 30 * time.Second, Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(b.Names, sdk.Features) {
			t.Errorf("Names = %v, want sdk.Features %v", b.Names, sdk.Features)
		}
	})
	t.Run("Src", func(t *testing.T) {
		for _, src := range addrs("10.0.0.1", "2001:db8::1", "172.16.0.9", "2001:db8:1::5", "10.0.0.10", "10.9.9.9") {
			for _, w := range sdk.WindowSizes {
				q := sdk.FeatureQuery{Window: w, Src: src, Limit: allRows}
				checkFeatures(t, st, q, wantFeatures(rows, q))
			}
		}
	})
	t.Run("Range", func(t *testing.T) {
		for _, r := range []sdk.TimeRange{
			{From: t0.Add(30 * time.Minute), To: t0.Add(time.Hour)},
			{From: t0.Add(100 * time.Minute)},
			{To: t0.Add(10 * time.Minute)},
			// Not aligned: a window starting before From is out even though it ends after.
			{From: t0.Add(30*time.Minute + 2*time.Second), To: t0.Add(33*time.Minute + time.Second)},
			{From: t0.Add(-time.Hour), To: t0},
			{From: t0.Add(time.Hour), To: t0.Add(time.Hour)},
			{From: t0.Add(time.Hour), To: t0.Add(30 * time.Minute)},
		} {
			for _, w := range sdk.WindowSizes {
				q := sdk.FeatureQuery{Window: w, Range: r, Limit: allRows}
				checkFeatures(t, st, q, wantFeatures(rows, q))
			}
			q := sdk.FeatureQuery{Window: 5 * time.Second, Src: sourcesA[4], Range: r, Limit: allRows}
			checkFeatures(t, st, q, wantFeatures(rows, q))
		}
	})
	t.Run("Limit", func(t *testing.T) {
		q := sdk.FeatureQuery{Window: 5 * time.Second, Limit: 25}
		want := wantFeatures(rows, q)
		// The cut must fall inside a group of rows sharing a start, or the
		// (Src, Sensor) part of the order is not exercised.
		all := wantFeatures(rows, sdk.FeatureQuery{Window: q.Window})
		cut := all[len(all)-len(want)-1]
		fatalIf(t, !cut.Start.Equal(want[0].Start), "limit 25 does not split a start group")
		checkFeatures(t, st, q, want)
		for _, q := range []sdk.FeatureQuery{
			{Window: 5 * time.Second, Src: netip.MustParseAddr("10.0.0.1"), Limit: 7},
			{Window: 30 * time.Second, Limit: 1},
			{Window: 180 * time.Second, Src: netip.MustParseAddr("2001:db8::1"), Limit: 3},
			{Window: 5 * time.Second, Range: sdk.TimeRange{From: t0.Add(20 * time.Minute), To: t0.Add(40 * time.Minute)}, Limit: 40},
		} {
			checkFeatures(t, st, q, wantFeatures(rows, q))
		}
	})
	t.Run("Protocols", func(t *testing.T) {
		for _, r := range []sdk.TimeRange{
			{},
			{From: t0.Add(30 * time.Minute), To: t0.Add(time.Hour)},
			{From: t0.Add(95 * time.Minute)},
			{To: t0.Add(20 * time.Minute)},
			{From: t0.Add(30*time.Minute + 2*time.Second), To: t0.Add(45*time.Minute + time.Second)},
			{From: t0.Add(-time.Hour), To: t0},
			{From: t0.Add(time.Hour), To: t0.Add(time.Hour)},
		} {
			checkProtocols(t, st, r, wantProtocols(rows, r))
		}
	})
	t.Run("TopSources", func(t *testing.T) {
		all := wantTopSources(rows, sdk.TopSourcesQuery{})
		fatalIf(t, len(all) < 5 || len(all) > 10, "%d distinct sources, want 5..10", len(all))
		for _, q := range []sdk.TopSourcesQuery{
			{By: "bytes", Limit: 3},
			{By: "packets", Limit: 5, Range: sdk.TimeRange{From: t0.Add(30 * time.Minute), To: t0.Add(time.Hour)}},
			{By: "packets", Limit: 100},
			{By: "bytes", Limit: 100, Range: sdk.TimeRange{From: t0.Add(90*time.Minute + 3*time.Second)}},
			{By: "", Limit: 0}, // defaults: bytes, at least 10
			{By: "packets", Limit: 4, Range: sdk.TimeRange{To: t0.Add(5 * time.Minute)}},
			{By: "bytes", Limit: 10, Range: sdk.TimeRange{From: t0.Add(-time.Hour), To: t0}},
		} {
			checkTopSources(t, st, q, wantTopSources(rows, q))
		}
	})
}

// checkFeatureFixture makes sure the generated rows exercise what the
// feature checks claim to check.
func checkFeatureFixture(t *testing.T, fx *featureFixture) {
	t.Helper()
	var nan, partial, estimated, shortEnd int
	sensors := map[string]bool{}
	v4, v6 := false, false
	for _, r := range fx.rows {
		for _, v := range r.Values {
			if math.IsNaN(v) {
				nan++
				break
			}
		}
		if r.Flags&sdk.WindowPartial != 0 {
			partial++
		}
		if r.Flags&sdk.WindowEstimated != 0 {
			estimated++
		}
		if !r.End.Equal(r.Start.Add(r.Window)) {
			shortEnd++
		}
		sensors[r.Sensor] = true
		v4 = v4 || r.Src.Is4()
		v6 = v6 || r.Src.Is6()
	}
	fatalIf(t, nan == 0 || partial == 0 || estimated == 0 || shortEnd == 0,
		"rows with NaN %d, partial %d, estimated %d, early end %d: want some of each", nan, partial, estimated, shortEnd)
	fatalIf(t, len(sensors) != 2 || !v4 || !v6, "sensors %v, IPv4 %v, IPv6 %v", sensors, v4, v6)
}

// protocolFeatures pairs each protocol with its packet and byte features.
var protocolFeatures = []struct{ proto, packets, bytes string }{
	{"tcp", sdk.FeatureTCPPackets, sdk.FeatureTCPBytes},
	{"udp", sdk.FeatureUDPPackets, sdk.FeatureUDPBytes},
	{"icmp", sdk.FeatureICMPPackets, sdk.FeatureICMPBytes},
	{"other", sdk.FeatureOtherPackets, sdk.FeatureOtherBytes},
}

// count converts a stored count; NaN (missing) counts as nothing.
func count(v float64) uint64 {
	if math.IsNaN(v) || v <= 0 {
		return 0
	}
	return uint64(v)
}

// protocolCounts builds the expected answer from {packets, bytes} pairs in
// the order tcp, udp, icmp, other.
func protocolCounts(c [4][2]uint64) []sdk.ProtocolCount {
	out := make([]sdk.ProtocolCount, 4)
	for i, p := range protocolFeatures {
		out[i] = sdk.ProtocolCount{Protocol: p.proto, Packets: c[i][0], Bytes: c[i][1]}
	}
	return out
}

func wantProtocols(rows []fxRow, r sdk.TimeRange) []sdk.ProtocolCount {
	var c [4][2]uint64
	for _, row := range rows {
		if row.Window != 5*time.Second || !r.Contains(row.Start) {
			continue
		}
		for i, p := range protocolFeatures {
			c[i][0] += count(get(row.Values, p.packets))
			c[i][1] += count(get(row.Values, p.bytes))
		}
	}
	return protocolCounts(c)
}

func checkProtocols(t *testing.T, st sdk.Store, r sdk.TimeRange, want []sdk.ProtocolCount) {
	t.Helper()
	got, err := st.QueryProtocols(t.Context(), r)
	if err != nil {
		t.Errorf("QueryProtocols(%s): %v", fmtRange(r), err)
		return
	}
	if !slices.Equal(got, want) {
		t.Errorf("QueryProtocols(%s) =\n  %+v\nwant\n  %+v", fmtRange(r), got, want)
	}
}

func wantTopSources(rows []fxRow, q sdk.TopSourcesQuery) []sdk.SourceTotal {
	sum := map[netip.Addr]*sdk.SourceTotal{}
	for _, row := range rows {
		if row.Window != 5*time.Second || !q.Range.Contains(row.Start) {
			continue
		}
		s := sum[row.Src]
		if s == nil {
			s = &sdk.SourceTotal{Src: row.Src}
			sum[row.Src] = s
		}
		s.Packets += count(get(row.Values, sdk.FeaturePackets))
		s.Bytes += count(get(row.Values, sdk.FeatureBytes))
	}
	out := make([]sdk.SourceTotal, 0, len(sum))
	for _, s := range sum {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b sdk.SourceTotal) int {
		ka, kb := a.Bytes, b.Bytes
		if q.By == "packets" {
			ka, kb = a.Packets, b.Packets
		}
		if c := cmp.Compare(kb, ka); c != 0 {
			return c
		}
		return a.Src.Compare(b.Src)
	})
	limit := q.Limit
	if limit == 0 {
		limit = 10
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

func checkTopSources(t *testing.T, st sdk.Store, q sdk.TopSourcesQuery, want []sdk.SourceTotal) {
	t.Helper()
	got, err := st.QueryTopSources(t.Context(), q)
	if err != nil {
		t.Errorf("QueryTopSources(by %q, range %s, limit %d): %v", q.By, fmtRange(q.Range), q.Limit, err)
		return
	}
	if !slices.Equal(got, want) {
		t.Errorf("QueryTopSources(by %q, range %s, limit %d) =\n  %+v\nwant\n  %+v", q.By, fmtRange(q.Range), q.Limit, got, want)
	}
}

// testFeatureNames appends batches whose names differ (a subset, in another
// order, and a row shorter than its names): values must come back by name.
func testFeatureNames(t *testing.T, h Harness) {
	st, ap := open(t, h)
	t0 := fixtureBase
	const w = 30 * time.Second
	full := make([]float64, len(sdk.Features))
	for i := range full {
		full[i] = float64(i) + 0.5
	}
	a, b := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("2001:db8::1")
	appendFeatures(t, ap,
		&sdk.FeatureBatch{Sensor: SensorA, Window: w, SchemaVersion: sdk.FeatureSchemaVersion, Names: slices.Clone(sdk.Features),
			Rows: []sdk.FeatureRow{{Src: a, Start: t0, End: t0.Add(w), Values: slices.Clone(full)}}},
		&sdk.FeatureBatch{Sensor: SensorA, Window: w, SchemaVersion: sdk.FeatureSchemaVersion,
			Names: []string{sdk.FeatureBytes, sdk.FeatureTCPPackets, sdk.FeaturePackets},
			Rows: []sdk.FeatureRow{
				{Src: b, Start: t0.Add(w), End: t0.Add(2 * w), Values: []float64{64, 1}}, // packets_total missing
				{Src: a, Start: t0.Add(w), End: t0.Add(2 * w), Flags: sdk.WindowPartial, Values: []float64{1500, 7, 9}},
			}},
	)
	flush(t, ap)

	nanRow := func(set map[string]float64) []float64 {
		v := make([]float64, len(sdk.Features))
		for i, n := range sdk.Features {
			x, ok := set[n]
			if !ok {
				x = math.NaN()
			}
			v[i] = x
		}
		return v
	}
	want := []fxRow{
		{Sensor: SensorA, Window: w, Src: a, Start: t0, End: t0.Add(w), Values: full},
		{Sensor: SensorA, Window: w, Src: a, Start: t0.Add(w), End: t0.Add(2 * w), Flags: sdk.WindowPartial,
			Values: nanRow(map[string]float64{sdk.FeatureBytes: 1500, sdk.FeatureTCPPackets: 7, sdk.FeaturePackets: 9})},
		{Sensor: SensorA, Window: w, Src: b, Start: t0.Add(w), End: t0.Add(2 * w),
			Values: nanRow(map[string]float64{sdk.FeatureBytes: 64, sdk.FeatureTCPPackets: 1})},
	}
	checkFeatures(t, st, sdk.FeatureQuery{Window: w}, want)
	checkFeatures(t, st, sdk.FeatureQuery{Window: w, Range: sdk.TimeRange{From: t0.Add(w)}}, want[1:])
}

// testFeaturesIdempotent re-sends batches, as and regrouped: every row is
// stored once, and sums do not double.
func testFeaturesIdempotent(t *testing.T, h Harness) {
	st, ap := open(t, h)
	fx := buildFeatures()
	sent := fx.batches[:5]
	var rows []fxRow
	for _, b := range sent {
		for _, r := range b.Rows {
			rows = append(rows, fxRow{Sensor: b.Sensor, Window: b.Window, Src: r.Src, Start: r.Start, End: r.End, Flags: r.Flags, Values: slices.Clone(r.Values)})
		}
	}
	slices.SortFunc(rows, func(a, b fxRow) int {
		if c := cmp.Compare(a.Window, b.Window); c != 0 {
			return c
		}
		return cmpRows(a, b)
	})
	// The same rows again, regrouped: every 5s row of sensor A in one batch.
	regrouped := &sdk.FeatureBatch{Sensor: SensorA, Window: 5 * time.Second, SchemaVersion: sdk.FeatureSchemaVersion, Names: slices.Clone(sdk.Features)}
	for _, r := range rows {
		if r.Sensor == SensorA && r.Window == regrouped.Window {
			regrouped.Rows = append(regrouped.Rows, sdk.FeatureRow{Src: r.Src, Start: r.Start, End: r.End, Flags: r.Flags, Values: slices.Clone(r.Values)})
		}
	}
	fatalIf(t, len(regrouped.Rows) == 0, "no 5s rows of %s in the first batches", SensorA)
	appendFeatures(t, ap, sent...)
	flush(t, ap)
	appendFeatures(t, ap, sent...)
	appendFeatures(t, ap, regrouped)
	flush(t, ap)

	for _, w := range sdk.WindowSizes {
		q := sdk.FeatureQuery{Window: w, Limit: allRows}
		checkFeatures(t, st, q, wantFeatures(rows, q))
	}
	checkProtocols(t, st, sdk.TimeRange{}, wantProtocols(rows, sdk.TimeRange{}))
	q := sdk.TopSourcesQuery{By: "bytes", Limit: 100}
	checkTopSources(t, st, q, wantTopSources(rows, q))
}

// handBatch builds a batch with the protocol and total features only.
func handBatch(sensor string, w time.Duration, rows ...handRow) *sdk.FeatureBatch {
	b := &sdk.FeatureBatch{Sensor: sensor, Window: w, SchemaVersion: sdk.FeatureSchemaVersion, Names: []string{
		sdk.FeatureTCPPackets, sdk.FeatureTCPBytes, sdk.FeatureUDPPackets, sdk.FeatureUDPBytes,
		sdk.FeatureICMPPackets, sdk.FeatureICMPBytes, sdk.FeatureOtherPackets, sdk.FeatureOtherBytes,
		sdk.FeaturePackets, sdk.FeatureBytes,
	}}
	for _, r := range rows {
		b.Rows = append(b.Rows, sdk.FeatureRow{Src: netip.MustParseAddr(r.src), Start: r.start, End: r.start.Add(w), Values: r.v[:]})
	}
	return b
}

type handRow struct {
	src   string
	start time.Time
	// tcp p/B, udp p/B, icmp p/B, other p/B, packets, bytes
	v [10]float64
}

func testProtocolsByHand(t *testing.T, h Harness) {
	st, ap := open(t, h)
	t0 := fixtureBase
	s := time.Second
	nan := math.NaN()
	appendFeatures(t, ap,
		handBatch(SensorA, 5*s,
			handRow{"10.0.0.1", t0, [10]float64{10, 1000, 2, 200, 0, 0, 1, 60, 13, 1260}},
			handRow{"10.0.0.1", t0.Add(10 * s), [10]float64{1, 40, 0, 0, 0, 0, 0, 0, 1, 40}},
			handRow{"10.0.0.9", t0.Add(60 * s), [10]float64{0, 0, 50, 5000, 0, 0, 0, 0, 50, 5000}},
		),
		// Missing UDP counts (NaN) count as zero.
		handBatch(SensorB, 5*s, handRow{"2001:db8::1", t0.Add(5 * s), [10]float64{5, 400, nan, nan, 3, 180, 0, 0, 8, 580}}),
		// Coarser windows hold the same packets again and must not count.
		handBatch(SensorA, 30*s, handRow{"10.0.0.1", t0, [10]float64{100, 10000, 0, 0, 0, 0, 0, 0, 100, 10000}}),
		handBatch(SensorA, 180*s, handRow{"10.0.0.1", t0, [10]float64{0, 0, 0, 0, 9, 900, 0, 0, 9, 900}}),
	)
	flush(t, ap)
	checkProtocols(t, st, sdk.TimeRange{From: t0, To: t0.Add(60 * s)},
		protocolCounts([4][2]uint64{{16, 1440}, {2, 200}, {3, 180}, {1, 60}}))
	checkProtocols(t, st, sdk.TimeRange{},
		protocolCounts([4][2]uint64{{16, 1440}, {52, 5200}, {3, 180}, {1, 60}}))
	checkProtocols(t, st, sdk.TimeRange{From: t0.Add(5 * s), To: t0.Add(10 * s)},
		protocolCounts([4][2]uint64{{5, 400}, {0, 0}, {3, 180}, {0, 0}}))
	checkProtocols(t, st, sdk.TimeRange{From: t0.Add(61 * s)}, protocolCounts([4][2]uint64{}))
}

func testTopSourcesByHand(t *testing.T, h Harness) {
	st, ap := open(t, h)
	t0 := fixtureBase
	s := time.Second
	tot := func(p, b float64) [10]float64 { return [10]float64{p, b, 0, 0, 0, 0, 0, 0, p, b} }
	appendFeatures(t, ap,
		handBatch(SensorA, 5*s,
			handRow{"10.0.0.1", t0, tot(12, 600)},
			handRow{"10.0.0.2", t0.Add(5 * s), tot(10, 1000)},
			handRow{"2001:db8::1", t0.Add(5 * s), tot(5, 1000)},
			handRow{"9.9.9.9", t0.Add(10 * s), tot(20, 500)},
			handRow{"10.0.0.3", t0.Add(60 * s), tot(99, 99999)},
		),
		handBatch(SensorB, 5*s, handRow{"10.0.0.1", t0, tot(8, 400)}),
		handBatch(SensorA, 30*s, handRow{"9.9.9.9", t0, tot(1e6, 1e9)}),
	)
	flush(t, ap)
	a := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	in := sdk.TimeRange{From: t0, To: t0.Add(60 * s)}
	// By bytes, three sources tie at 1000 and go in address order, IPv4 first.
	byBytes := []sdk.SourceTotal{
		{Src: a("10.0.0.1"), Packets: 20, Bytes: 1000},
		{Src: a("10.0.0.2"), Packets: 10, Bytes: 1000},
		{Src: a("2001:db8::1"), Packets: 5, Bytes: 1000},
		{Src: a("9.9.9.9"), Packets: 20, Bytes: 500},
	}
	checkTopSources(t, st, sdk.TopSourcesQuery{By: "bytes", Range: in, Limit: 10}, byBytes)
	checkTopSources(t, st, sdk.TopSourcesQuery{By: "", Range: in, Limit: 10}, byBytes)
	checkTopSources(t, st, sdk.TopSourcesQuery{By: "bytes", Range: in, Limit: 2}, byBytes[:2])
	// By packets, 9.9.9.9 ties with 10.0.0.1 at 20 and sorts first.
	checkTopSources(t, st, sdk.TopSourcesQuery{By: "packets", Range: in, Limit: 10}, []sdk.SourceTotal{
		{Src: a("9.9.9.9"), Packets: 20, Bytes: 500},
		{Src: a("10.0.0.1"), Packets: 20, Bytes: 1000},
		{Src: a("10.0.0.2"), Packets: 10, Bytes: 1000},
		{Src: a("2001:db8::1"), Packets: 5, Bytes: 1000},
	})
	checkTopSources(t, st, sdk.TopSourcesQuery{By: "bytes", Limit: 2}, []sdk.SourceTotal{
		{Src: a("10.0.0.3"), Packets: 99, Bytes: 99999},
		{Src: a("10.0.0.1"), Packets: 20, Bytes: 1000},
	})
	checkTopSources(t, st, sdk.TopSourcesQuery{By: "packets", Range: sdk.TimeRange{From: t0.Add(5 * s), To: t0.Add(10 * s)}, Limit: 10}, []sdk.SourceTotal{
		{Src: a("10.0.0.2"), Packets: 10, Bytes: 1000},
		{Src: a("2001:db8::1"), Packets: 5, Bytes: 1000},
	})
}
