package main

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/netguardian/netguardian/internal/pgtest"
	"github.com/netguardian/netguardian/sdk"
)

// partitionRanges lists table's partitions as [from, to) pairs, oldest first.
func partitionRanges(t *testing.T, c *pgx.Conn, table string) []span {
	t.Helper()
	spans, err := listPartitions(t.Context(), c, table)
	if err != nil {
		t.Fatal(err)
	}
	return spans
}

// TestRetention writes six hours of data with partition = 1h and
// retention = 2h: the partitions of the first three hours go (the newest
// data is in hour 6, so hours 1..3 end at least 2h before it), and queries
// answer for the hours left.
func TestRetention(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t)
	p := startSink(t, srv.URL(), map[string]any{"partition": "1h", "retention": "2h", "raw_packets": true})
	w := newWriter(t, p)
	base := time.Date(2024, time.January, 10, 0, 0, 0, 0, time.UTC) // far from the wall clock
	src := netip.MustParseAddr("10.1.2.3")
	var want []time.Time // window starts, oldest first
	for m := 0; m < 6*60; m += 10 {
		start := base.Add(time.Duration(m) * time.Minute)
		want = append(want, start)
		v := make([]float64, len(sdk.Features))
		v[0], v[1] = 1, 100
		if err := w.write(sdk.Records{Features: &sdk.FeatureBatch{Sensor: "r", Window: 5 * time.Second, Names: sdk.Features,
			Rows: []sdk.FeatureRow{{Src: src, Start: start, End: start.Add(5 * time.Second), Values: v}}}}); err != nil {
			t.Fatal(err)
		}
		if err := w.write(sdk.Records{Alerts: []sdk.Alert{{ID: fmt.Sprintf("a%d", m), Label: "l", Severity: sdk.SeverityLow,
			Src: src, Window: 5 * time.Second, Start: start, End: start.Add(5 * time.Second), Time: start.Add(6 * time.Second)}}}); err != nil {
			t.Fatal(err)
		}
		b := &sdk.PacketBatch{FirstIndex: uint64(m)}
		pk := sdk.Packet{Timestamp: start.UnixNano(), Protocol: sdk.ProtoUDP, Length: 60}
		pk.SetAddrs(src, src)
		b.Append(&pk)
		if err := w.write(sdk.Records{Packets: b}); err != nil {
			t.Fatal(err)
		}
	}

	c := db(t, srv.URL())
	keepFrom := base.Add(3 * time.Hour)
	for _, table := range partitionedTables {
		var old []span
		for _, s := range partitionRanges(t, c, table) {
			if s.from < base.Add(24*time.Hour).Unix() {
				old = append(old, s) // not the ones made ahead for the wall clock
			}
		}
		var got []string
		for _, s := range old {
			got = append(got, time.Unix(s.from, 0).UTC().Format("15:04")+"-"+time.Unix(s.to, 0).UTC().Format("15:04"))
		}
		if want := []string{"03:00-04:00", "04:00-05:00", "05:00-06:00"}; !slices.Equal(got, want) {
			t.Errorf("%s partitions %v, want %v", table, got, want)
		}
	}
	if n := count(t, c, "SELECT count(*) FROM raw_packet_batches WHERE first_time < $1", keepFrom); n != 0 {
		t.Errorf("%d packet batch keys of dropped partitions are left", n)
	}
	if n, want := count(t, c, "SELECT count(*) FROM raw_packets"), int64(18); n != want {
		t.Errorf("raw_packets holds %d rows, want %d (hours 3..5)", n, want)
	}

	st := p.conn.Store()
	ctx := context.Background()
	fb, err := st.QueryFeatures(ctx, sdk.FeatureQuery{Window: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var starts []time.Time
	for _, r := range fb.Rows {
		starts = append(starts, r.Start)
	}
	if kept := want[18:]; !slices.EqualFunc(starts, kept, time.Time.Equal) {
		t.Errorf("features after retention start at %v..., %d rows; want %d rows from %v", starts[:min(1, len(starts))], len(starts), len(kept), kept[0])
	}
	fb, err = st.QueryFeatures(ctx, sdk.FeatureQuery{Window: 5 * time.Second, Range: sdk.TimeRange{From: base.Add(4 * time.Hour), To: base.Add(5 * time.Hour)}})
	if err != nil || len(fb.Rows) != 6 {
		t.Errorf("features of hour 4: %d rows, %v; want 6", len(fb.Rows), err)
	}
	page, err := st.QueryAlerts(ctx, sdk.AlertQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Alerts) != 18 || !page.Alerts[len(page.Alerts)-1].End.Equal(keepFrom.Add(5*time.Second)) {
		t.Errorf("alerts after retention: %d, want 18 ending with the one of %v", len(page.Alerts), keepFrom)
	}
	top, err := st.QueryTopSources(ctx, sdk.TopSourcesQuery{})
	if err != nil || len(top) != 1 || top[0].Packets != 18 || top[0].Bytes != 1800 {
		t.Errorf("top sources after retention: %+v, %v; want 18 packets, 1800 bytes", top, err)
	}
	stats, err := p.conn.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Counters["partitions_dropped"] != 9 {
		t.Errorf("partitions_dropped = %d, want 9", stats.Counters["partitions_dropped"])
	}
}

// TestPartitionSettingChange: partitions made with one interval stay, and
// data in a bucket they cover only in part gets partitions for the gaps.
func TestPartitionSettingChange(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t)
	base := time.Date(2024, time.February, 1, 0, 0, 0, 0, time.UTC)
	write := func(p *launched, at time.Time) {
		t.Helper()
		w := newWriter(t, p)
		if err := w.write(sdk.Records{Alerts: []sdk.Alert{{ID: at.String(), Label: "l", Severity: sdk.SeverityLow,
			Src: netip.MustParseAddr("10.0.0.1"), Window: 5 * time.Second, Time: at}}}); err != nil {
			t.Fatal(err)
		}
	}
	write(startSink(t, srv.URL(), map[string]any{"partition": "1h"}), base.Add(90*time.Minute))
	// Now daily: the day's bucket is covered from 01:00 to 02:00 already.
	p := startSink(t, srv.URL(), map[string]any{"partition": "24h"})
	write(p, base.Add(30*time.Minute))
	write(p, base.Add(20*time.Hour))
	c := db(t, srv.URL())
	var got []string
	for _, s := range partitionRanges(t, c, tableAlerts) {
		if s.from < base.Add(48*time.Hour).Unix() {
			got = append(got, time.Unix(s.from, 0).UTC().Format("02 15:04")+"-"+time.Unix(s.to, 0).UTC().Format("02 15:04"))
		}
	}
	if want := []string{"01 00:00-01 01:00", "01 01:00-01 02:00", "01 02:00-02 00:00"}; !slices.Equal(got, want) {
		t.Errorf("partitions %v, want %v", got, want)
	}
	if n := count(t, c, "SELECT count(*) FROM detected_alerts"); n != 3 {
		t.Errorf("%d alerts stored, want 3", n)
	}
}

// TestPartitionDroppedElsewhere: a partition the sink created and
// remembers is dropped behind its back (another sensor's retention); the
// next write re-creates it instead of failing.
func TestPartitionDroppedElsewhere(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t)
	p := startSink(t, srv.URL(), map[string]any{"partition": "1h", "raw_packets": true})
	w := newWriter(t, p)
	at := time.Date(2024, time.March, 3, 10, 30, 0, 0, time.UTC)
	write := func(k int) {
		t.Helper()
		src := netip.AddrFrom4([4]byte{10, 0, 0, byte(k)})
		v := make([]float64, len(sdk.Features))
		if err := w.write(sdk.Records{Features: &sdk.FeatureBatch{Sensor: "x", Window: 5 * time.Second, Names: sdk.Features,
			Rows: []sdk.FeatureRow{{Src: src, Start: at, End: at.Add(5 * time.Second), Values: v}}}}); err != nil {
			t.Fatalf("features %d: %v", k, err)
		}
		if err := w.write(sdk.Records{Alerts: []sdk.Alert{{ID: fmt.Sprint(k), Src: src, Label: "l", Severity: sdk.SeverityLow, Time: at}}}); err != nil {
			t.Fatalf("alerts %d: %v", k, err)
		}
		b := &sdk.PacketBatch{FirstIndex: uint64(k)}
		pk := sdk.Packet{Timestamp: at.UnixNano() + int64(k), Length: 60}
		pk.SetAddrs(src, src)
		b.Append(&pk)
		if err := w.write(sdk.Records{Packets: b}); err != nil {
			t.Fatalf("packets %d: %v", k, err)
		}
	}
	write(1)
	c := db(t, srv.URL())
	for _, table := range partitionedTables {
		if _, err := c.Exec(t.Context(), "DROP TABLE "+partitionName(table, at.Truncate(time.Hour).Unix())); err != nil {
			t.Fatal(err)
		}
	}
	write(2)
	for _, table := range partitionedTables {
		if n := count(t, c, "SELECT count(*) FROM "+table); n != 1 {
			t.Errorf("%s holds %d rows after its partition was dropped and written again, want 1", table, n)
		}
	}
}
