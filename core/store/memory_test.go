package store

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/netguardian/netguardian/sdk"
	"github.com/netguardian/netguardian/sdk/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, storetest.Harness{New: func(*testing.T) (sdk.Store, storetest.Appender) {
		m := NewMemory(Options{})
		return m, m
	}})
}

var t0 = time.Date(2025, time.March, 1, 10, 0, 0, 0, time.UTC)

const w5 = 5 * time.Second

// batch builds a 5s batch of sensor "s1", one row per start offset (in 5s
// steps from t0), each with packets_total = 1 and bytes_total = 100.
func batch(src string, steps ...int) *sdk.FeatureBatch {
	b := &sdk.FeatureBatch{Sensor: "s1", Window: w5, Names: []string{sdk.FeaturePackets, sdk.FeatureBytes}}
	for _, k := range steps {
		start := t0.Add(time.Duration(k) * w5)
		b.Rows = append(b.Rows, sdk.FeatureRow{Src: netip.MustParseAddr(src), Start: start, End: start.Add(w5), Values: []float64{1, 100}})
	}
	return b
}

// heldRows returns the (step, src) of every 5s row held, oldest first.
func heldRows(t *testing.T, m *Memory) []string {
	t.Helper()
	b, err := m.QueryFeatures(t.Context(), sdk.FeatureQuery{Window: w5})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range b.Rows {
		out = append(out, fmt.Sprintf("%d/%s", r.Start.Sub(t0)/w5, r.Src))
	}
	return out
}

func mustAppend(t *testing.T, m *Memory, bs ...*sdk.FeatureBatch) {
	t.Helper()
	for _, b := range bs {
		if err := m.AppendFeatures(t.Context(), b); err != nil {
			t.Fatal(err)
		}
	}
}

func checkStats(t *testing.T, m *Memory, rows5s, alerts int, rowsEvicted, alertsEvicted uint64) {
	t.Helper()
	s := m.Stats()
	if s.Rows[w5] != rows5s || s.Alerts != alerts || s.RowsEvicted != rowsEvicted || s.AlertsEvicted != alertsEvicted {
		t.Errorf("Stats = %+v; want %d 5s rows, %d alerts, %d rows and %d alerts evicted", s, rows5s, alerts, rowsEvicted, alertsEvicted)
	}
}

func TestEvictRowsOverCap(t *testing.T) {
	m := NewMemory(Options{MaxRowsPerWindow: 4})
	mustAppend(t, m, batch("10.0.0.1", 0, 1, 2), batch("10.0.0.1", 3, 4, 5, 6), batch("10.0.0.1", 7, 8, 9))
	if got, want := fmt.Sprint(heldRows(t, m)), "[6/10.0.0.1 7/10.0.0.1 8/10.0.0.1 9/10.0.0.1]"; got != want {
		t.Errorf("held %s, want %s", got, want)
	}
	checkStats(t, m, 4, 0, 6, 0)

	// A late row older than everything held is itself the oldest: gone at once.
	mustAppend(t, m, batch("10.0.0.1", 2))
	checkStats(t, m, 4, 0, 7, 0)

	// A late row inside the held span pushes out the oldest.
	mustAppend(t, m, batch("10.0.0.2", 7))
	if got, want := fmt.Sprint(heldRows(t, m)), "[7/10.0.0.1 7/10.0.0.2 8/10.0.0.1 9/10.0.0.1]"; got != want {
		t.Errorf("held %s, want %s", got, want)
	}
	checkStats(t, m, 4, 0, 8, 0)

	// The cap is per window size.
	b30 := batch("10.0.0.1", 0)
	b30.Window = 30 * time.Second
	mustAppend(t, m, b30)
	if s := m.Stats(); s.Rows[30*time.Second] != 1 || s.Rows[w5] != 4 || s.RowsEvicted != 8 {
		t.Errorf("Stats = %+v; want one 30s row, four 5s rows, 8 evicted", s)
	}
}

func TestEvictRowsRetention(t *testing.T) {
	m := NewMemory(Options{Retention: time.Minute})
	mustAppend(t, m, batch("10.0.0.1", 0, 6)) // t0, t0+30s
	checkStats(t, m, 2, 0, 0, 0)
	mustAppend(t, m, batch("10.0.0.1", 13)) // t0+65s: t0 is 65s older, t0+30s 35s
	if got, want := fmt.Sprint(heldRows(t, m)), "[6/10.0.0.1 13/10.0.0.1]"; got != want {
		t.Errorf("held %s, want %s", got, want)
	}
	checkStats(t, m, 2, 0, 1, 0)
}

func alert(id string, at time.Duration) sdk.Alert {
	return sdk.Alert{ID: id, Label: "portscan", Severity: sdk.SeverityHigh, Src: netip.MustParseAddr("10.0.0.1"),
		Window: w5, Start: t0, End: t0.Add(w5), Time: t0.Add(at)}
}

func heldAlerts(t *testing.T, m *Memory) string {
	t.Helper()
	p, err := m.QueryAlerts(t.Context(), sdk.AlertQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, a := range p.Alerts {
		ids = append(ids, a.ID)
	}
	return fmt.Sprint(ids)
}

func TestEvictAlerts(t *testing.T) {
	ctx := t.Context()
	m := NewMemory(Options{MaxAlerts: 3})
	for i := range 5 {
		if err := m.AppendAlerts(ctx, []sdk.Alert{alert(fmt.Sprintf("a%d", i), time.Duration(i)*time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := heldAlerts(t, m), "[a4 a3 a2]"; got != want {
		t.Errorf("held %s, want %s", got, want)
	}
	checkStats(t, m, 0, 3, 0, 2)
	// Re-sent: a held ID is ignored; an evicted one is the oldest again and goes again.
	if err := m.AppendAlerts(ctx, []sdk.Alert{alert("a3", 3*time.Second), alert("a0", 0)}); err != nil {
		t.Fatal(err)
	}
	if got, want := heldAlerts(t, m), "[a4 a3 a2]"; got != want {
		t.Errorf("after re-send held %s, want %s", got, want)
	}
	checkStats(t, m, 0, 3, 0, 3)
	// An evicted ID may come back when it is new enough to stay.
	if err := m.AppendAlerts(ctx, []sdk.Alert{alert("a1", 10*time.Second)}); err != nil {
		t.Fatal(err)
	}
	if got, want := heldAlerts(t, m), "[a1 a4 a3]"; got != want {
		t.Errorf("held %s, want %s", got, want)
	}
}

func TestEvictAlertsRetention(t *testing.T) {
	m := NewMemory(Options{Retention: 10 * time.Minute})
	err := m.AppendAlerts(t.Context(), []sdk.Alert{alert("old", 0), alert("mid", 5*time.Minute), alert("new", 11*time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := heldAlerts(t, m), "[new mid]"; got != want {
		t.Errorf("held %s, want %s", got, want)
	}
	checkStats(t, m, 0, 2, 0, 1)
}

func TestAppendInvalid(t *testing.T) {
	ctx := t.Context()
	m := NewMemory(Options{})
	noSrc := batch("10.0.0.1", 0, 1)
	noSrc.Rows[1].Src = netip.Addr{}
	noWindow := batch("10.0.0.1", 0)
	noWindow.Window = 0
	for name, b := range map[string]*sdk.FeatureBatch{"nil": nil, "no window": noWindow, "no source": noSrc} {
		if err := m.AppendFeatures(ctx, b); err == nil {
			t.Errorf("AppendFeatures(%s): no error", name)
		}
	}
	if err := m.AppendAlerts(ctx, []sdk.Alert{alert("ok", 0), alert("", 0)}); err == nil {
		t.Error("AppendAlerts(alert without ID): no error")
	}
	// A rejected batch stores nothing, not even its valid part.
	checkStats(t, m, 0, 0, 0, 0)
	if len(m.Stats().Rows) != 0 {
		t.Errorf("Stats().Rows = %v after rejected batches", m.Stats().Rows)
	}
}

// Callers may change what queries return; the store must not notice.
func TestQueryResultsAreCopies(t *testing.T) {
	ctx := t.Context()
	m := NewMemory(Options{})
	mustAppend(t, m, batch("10.0.0.1", 0))
	a := alert("a", 0)
	a.TopFeatures = []sdk.FeatureValue{{Name: sdk.FeaturePackets, Value: 1}}
	a.Details = []byte(`{"k":1}`)
	if err := m.AppendAlerts(ctx, []sdk.Alert{a}); err != nil {
		t.Fatal(err)
	}
	b, _ := m.QueryFeatures(ctx, sdk.FeatureQuery{Window: w5})
	b.Rows[0].Values[0] = -1
	b.Names[0] = "scribbled"
	p, _ := m.QueryAlerts(ctx, sdk.AlertQuery{})
	p.Alerts[0].TopFeatures[0].Value = -1
	p.Alerts[0].Details[2] = 'X'

	b, _ = m.QueryFeatures(ctx, sdk.FeatureQuery{Window: w5})
	if v, _ := b.Value(0, sdk.FeaturePackets); v != 1 || b.Names[0] != sdk.FeaturePackets {
		t.Errorf("after changing a result: names %v, packets %v; want packets_total first, 1", b.Names, v)
	}
	p, _ = m.QueryAlerts(ctx, sdk.AlertQuery{})
	if p.Alerts[0].TopFeatures[0].Value != 1 || string(p.Alerts[0].Details) != `{"k":1}` {
		t.Errorf("after changing a result: top features %v, details %s", p.Alerts[0].TopFeatures, p.Alerts[0].Details)
	}
}

// A feature name first seen in a later batch becomes a new column: rows
// stored before it read NaN there.
func TestFeatureColumnsGrow(t *testing.T) {
	ctx := t.Context()
	m := NewMemory(Options{})
	mustAppend(t, m, batch("10.0.0.1", 0))
	later := batch("10.0.0.1", 1)
	later.Names = []string{"future_feature_total", sdk.FeatureBytes}
	later.Rows[0].Values = []float64{42, 300}
	mustAppend(t, m, later)
	b, err := m.QueryFeatures(ctx, sdk.FeatureQuery{Window: w5})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{sdk.FeaturePackets, sdk.FeatureBytes, "future_feature_total"}
	if fmt.Sprint(b.Names) != fmt.Sprint(want) || len(b.Rows) != 2 {
		t.Fatalf("names %v, %d rows; want %v, 2 rows", b.Names, len(b.Rows), want)
	}
	for i, want := range [][3]float64{{1, 100, math.NaN()}, {math.NaN(), 300, 42}} {
		for j, x := range want {
			got := b.Rows[i].Values[j]
			if got != x && !(math.IsNaN(got) && math.IsNaN(x)) {
				t.Errorf("row %d %s = %v, want %v", i, b.Names[j], got, x)
			}
		}
	}
}

// TestConcurrent runs appenders and queriers at once (run with -race), with
// caps small enough that eviction runs too, then checks the bookkeeping:
// every distinct row appended is either held or counted as evicted.
func TestConcurrent(t *testing.T) {
	ctx := t.Context()
	const (
		writers = 4
		batches = 50
		perRow  = 20 // rows per batch
		cap     = 500
	)
	m := NewMemory(Options{MaxRowsPerWindow: cap, MaxAlerts: cap})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range batches {
				// Writer w owns source 10.0.w.x, so rows never collide across writers.
				b := &sdk.FeatureBatch{Sensor: "s1", Window: w5, Names: []string{sdk.FeaturePackets, sdk.FeatureBytes}}
				var as []sdk.Alert
				for i := range perRow {
					src := netip.AddrFrom4([4]byte{10, 0, byte(w), byte(i)})
					start := t0.Add(time.Duration(k) * w5)
					b.Rows = append(b.Rows, sdk.FeatureRow{Src: src, Start: start, End: start.Add(w5), Values: []float64{1, 100}})
					a := alert(fmt.Sprintf("w%d-%d-%d", w, k, i), time.Duration(k)*time.Second)
					a.Src = src
					as = append(as, a)
				}
				if err := m.AppendFeatures(ctx, b); err != nil {
					t.Error(err)
					return
				}
				if err := m.AppendAlerts(ctx, as); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var qwg sync.WaitGroup
	for range 4 {
		qwg.Add(1)
		go func() {
			defer qwg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if b, err := m.QueryFeatures(ctx, sdk.FeatureQuery{Window: w5, Limit: 50}); err != nil || len(b.Rows) > 50 {
					t.Errorf("QueryFeatures: %v", err)
					return
				}
				if _, err := m.QueryProtocols(ctx, sdk.TimeRange{}); err != nil {
					t.Error(err)
					return
				}
				if _, err := m.QueryTopSources(ctx, sdk.TopSourcesQuery{By: "packets"}); err != nil {
					t.Error(err)
					return
				}
				p, err := m.QueryAlerts(ctx, sdk.AlertQuery{Limit: 10})
				if err == nil && p.NextCursor != "" {
					_, err = m.QueryAlerts(ctx, sdk.AlertQuery{Limit: 10, Cursor: p.NextCursor})
				}
				if err != nil {
					t.Error(err)
					return
				}
				_ = m.Stats()
			}
		}()
	}
	wg.Wait()
	close(stop)
	qwg.Wait()

	const total = writers * batches * perRow
	s := m.Stats()
	if s.Rows[w5] != cap || uint64(s.Rows[w5])+s.RowsEvicted != total {
		t.Errorf("rows held %d + evicted %d; want %d held of %d", s.Rows[w5], s.RowsEvicted, cap, total)
	}
	if s.Alerts != cap || uint64(s.Alerts)+s.AlertsEvicted != total {
		t.Errorf("alerts held %d + evicted %d; want %d held of %d", s.Alerts, s.AlertsEvicted, cap, total)
	}
	// What is held is the newest 500 by (start, src): the last 6 starts
	// whole (80 rows each) and the 20 highest sources of the 7th last.
	b, err := m.QueryFeatures(ctx, sdk.FeatureQuery{Window: w5, Limit: 2 * cap})
	if err != nil {
		t.Fatal(err)
	}
	wantFirst := fmt.Sprintf("%v %v", t0.Add((batches-7)*w5), netip.MustParseAddr("10.0.3.0"))
	if len(b.Rows) != cap || fmt.Sprintf("%v %v", b.Rows[0].Start, b.Rows[0].Src) != wantFirst {
		t.Fatalf("%d rows held, first %v %v; want %d, first %s", len(b.Rows), b.Rows[0].Start, b.Rows[0].Src, cap, wantFirst)
	}
	for i := 1; i < len(b.Rows); i++ {
		if b.Rows[i].Start.Before(b.Rows[i-1].Start) {
			t.Fatalf("row %d starts %v, before row %d", i, b.Rows[i].Start, i-1)
		}
	}
}

func TestCanceledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	m := NewMemory(Options{})
	if err := m.AppendFeatures(ctx, batch("10.0.0.1", 0)); err == nil {
		t.Error("AppendFeatures with a canceled context: no error")
	}
	if _, err := m.QueryAlerts(ctx, sdk.AlertQuery{}); err == nil {
		t.Error("QueryAlerts with a canceled context: no error")
	}
}

// The running protocol totals follow eviction, duplicates and late rows.
func TestProtocolTotalsFollowEviction(t *testing.T) {
	ctx := t.Context()
	m := NewMemory(Options{MaxRowsPerWindow: 3})
	tcp := func(src string, step int, packets float64) *sdk.FeatureBatch {
		start := t0.Add(time.Duration(step) * w5)
		return &sdk.FeatureBatch{Sensor: "s1", Window: w5, Names: []string{sdk.FeatureTCPPackets, sdk.FeatureTCPBytes},
			Rows: []sdk.FeatureRow{{Src: netip.MustParseAddr(src), Start: start, End: start.Add(w5), Values: []float64{packets, 10 * packets}}}}
	}
	check := func(what string, r sdk.TimeRange, packets uint64) {
		t.Helper()
		got, err := m.QueryProtocols(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if got[0].Protocol != "tcp" || got[0].Packets != packets || got[0].Bytes != 10*packets {
			t.Errorf("%s: %+v, want tcp %d packets, %d bytes", what, got[0], packets, 10*packets)
		}
	}
	mustAppend(t, m, tcp("10.0.0.1", 0, 1), tcp("10.0.0.1", 1, 2), tcp("10.0.0.1", 2, 4), tcp("10.0.0.2", 2, 8), tcp("10.0.0.1", 3, 16))
	check("capped at 3 rows", sdk.TimeRange{}, 4+8+16)
	mustAppend(t, m, tcp("10.0.0.1", 2, 4))
	check("after a re-sent row", sdk.TimeRange{}, 4+8+16)
	mustAppend(t, m, tcp("10.0.0.2", 1, 32))
	check("after a late row older than all", sdk.TimeRange{}, 4+8+16)
	mustAppend(t, m, tcp("10.0.0.2", 3, 64))
	check("after a row evicting half a window", sdk.TimeRange{}, 8+16+64)
	check("newest window", sdk.TimeRange{From: t0.Add(3 * w5)}, 16+64)
	check("oldest window", sdk.TimeRange{To: t0.Add(3 * w5)}, 8)
	checkStats(t, m, 3, 0, 4, 0)
}
