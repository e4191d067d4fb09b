package store

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/netguardian/netguardian/sdk"
)

const (
	benchSources = 2000
	benchWindows = 100 // 2000 × 100 = 200k 5s rows
	benchAlerts  = 100_000
)

func benchSrc(i int) netip.Addr {
	if i%4 == 3 {
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)})
	}
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}

// benchFeatures fills a store with 200k 5s rows of every feature: 2000
// sources in each of 100 consecutive windows, one batch per window.
func benchFeatures(b *testing.B) *Memory {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	m := NewMemory(Options{})
	for k := range benchWindows {
		start := t0.Add(time.Duration(k) * w5)
		batch := &sdk.FeatureBatch{Sensor: "bench", Window: w5, Names: sdk.Features}
		for i := range benchSources {
			v := make([]float64, len(sdk.Features))
			for j := range v {
				v[j] = float64(rng.IntN(10_000))
			}
			batch.Rows = append(batch.Rows, sdk.FeatureRow{Src: benchSrc(i), Start: start, End: start.Add(w5), Values: v})
		}
		if err := m.AppendFeatures(b.Context(), batch); err != nil {
			b.Fatal(err)
		}
	}
	if n := m.Stats().Rows[w5]; n != benchSources*benchWindows {
		b.Fatalf("%d rows held", n)
	}
	return m
}

func BenchmarkTopSources(b *testing.B) {
	m := benchFeatures(b)
	end := t0.Add(benchWindows * w5)
	for _, bc := range []struct {
		name string
		q    sdk.TopSourcesQuery
	}{
		{"All200k", sdk.TopSourcesQuery{By: "bytes", Limit: 10}},
		{"Last5m120k", sdk.TopSourcesQuery{By: "packets", Limit: 10, Range: sdk.TimeRange{From: end.Add(-5 * time.Minute)}}},
		{"Last30s12k", sdk.TopSourcesQuery{By: "bytes", Limit: 10, Range: sdk.TimeRange{From: end.Add(-30 * time.Second)}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if got, err := m.QueryTopSources(b.Context(), bc.q); err != nil || len(got) != 10 {
					b.Fatal(len(got), err)
				}
			}
		})
	}
}

func BenchmarkQueryProtocols(b *testing.B) {
	m := benchFeatures(b)
	for b.Loop() {
		if _, err := m.QueryProtocols(b.Context(), sdk.TimeRange{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkQueryFeatures(b *testing.B) {
	m := benchFeatures(b)
	for _, bc := range []struct {
		name string
		q    sdk.FeatureQuery
		want int
	}{
		{"Newest1000", sdk.FeatureQuery{Window: w5, Limit: 1000}, 1000},
		{"OneSrc", sdk.FeatureQuery{Window: w5, Src: benchSrc(7)}, benchWindows},
		{"Range1Window", sdk.FeatureQuery{Window: w5, Range: sdk.TimeRange{From: t0.Add(50 * w5), To: t0.Add(51 * w5)}}, benchSources},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if got, err := m.QueryFeatures(b.Context(), bc.q); err != nil || len(got.Rows) != bc.want {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAppendFeatures appends 2000-row batches to a store at its cap,
// so every append also evicts.
func BenchmarkAppendFeatures(b *testing.B) {
	m := benchFeatures(b)
	rows := make([]sdk.FeatureRow, benchSources)
	for i := range rows {
		rows[i] = sdk.FeatureRow{Src: benchSrc(i), Values: make([]float64, len(sdk.Features))}
	}
	k := benchWindows
	for b.Loop() {
		start := t0.Add(time.Duration(k) * w5)
		for i := range rows {
			rows[i].Start, rows[i].End = start, start.Add(w5)
		}
		if err := m.AppendFeatures(b.Context(), &sdk.FeatureBatch{Sensor: "bench", Window: w5, Names: sdk.Features, Rows: rows}); err != nil {
			b.Fatal(err)
		}
		k++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchSources), "ns/row")
}

// benchAlertStore holds 100k alerts, one every 100ms, over 1000 sources,
// four labels and four severities.
func benchAlertStore(b *testing.B) *Memory {
	b.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	labels := []string{"portscan", "ddos", "bruteforce", "dns_tunnel"}
	sevs := []sdk.Severity{sdk.SeverityLow, sdk.SeverityMedium, sdk.SeverityHigh, sdk.SeverityCritical}
	m := NewMemory(Options{})
	batch := make([]sdk.Alert, 0, 1000)
	for i := range benchAlerts {
		at := t0.Add(time.Duration(i) * 100 * time.Millisecond)
		end := at.Add(-time.Second).Truncate(30 * time.Second)
		batch = append(batch, sdk.Alert{
			ID: fmt.Sprintf("%016x", rng.Uint64()), Sensor: "bench", Detector: "xgboost",
			Label: labels[rng.IntN(4)], Severity: sevs[rng.IntN(4)], Score: rng.Float64(),
			Src: benchSrc(rng.IntN(1000)), Window: 30 * time.Second, Start: end.Add(-30 * time.Second), End: end, Time: at,
			TopFeatures: []sdk.FeatureValue{{Name: sdk.FeatureSYN, Value: 100, Weight: 0.5}},
			Details:     []byte(`{"model":"xgb-v1"}`),
		})
		if len(batch) == cap(batch) {
			if err := m.AppendAlerts(b.Context(), batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if n := m.Stats().Alerts; n != benchAlerts {
		b.Fatalf("%d alerts held", n)
	}
	return m
}

func BenchmarkQueryAlerts(b *testing.B) {
	m := benchAlertStore(b)
	mid, err := m.QueryAlerts(b.Context(), sdk.AlertQuery{Limit: benchAlerts / 2})
	if err != nil || mid.NextCursor == "" {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		q    sdk.AlertQuery
	}{
		{"FirstPage", sdk.AlertQuery{Limit: 100}},
		{"Label", sdk.AlertQuery{Label: "ddos", Limit: 100}},
		{"SeverityLabel", sdk.AlertQuery{Severity: sdk.SeverityCritical, Label: "ddos", Limit: 100}},
		{"DeepCursor", sdk.AlertQuery{Limit: 100, Cursor: mid.NextCursor}},
		// Every alert of one source in 100k: scans the whole store.
		{"RareSrcFullScan", sdk.AlertQuery{Src: benchSrc(5), Limit: 1000}},
		// Window ends early in the history: scans from the newest back.
		{"OldRange", sdk.AlertQuery{Range: sdk.TimeRange{To: t0.Add(10 * time.Minute)}, Limit: 100}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if p, err := m.QueryAlerts(b.Context(), bc.q); err != nil || len(p.Alerts) == 0 {
					b.Fatal(err)
				}
			}
		})
	}
}
