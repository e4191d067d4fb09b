package main

import (
	"fmt"
	"math"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netguardian/netguardian/internal/pgtest"
	"github.com/netguardian/netguardian/sdk"
)

var faultBase = time.Date(2025, time.June, 1, 12, 0, 0, 0, time.UTC)

// faultBatch is batch k of the fault test: rows 5s windows of distinct
// sources, all starting at faultBase + k*5s.
func faultBatch(k, rows int) *sdk.FeatureBatch {
	b := &sdk.FeatureBatch{Sensor: "fault", Window: 5 * time.Second, SchemaVersion: sdk.FeatureSchemaVersion, Names: sdk.Features}
	start := faultBase.Add(time.Duration(k) * 5 * time.Second)
	for i := range rows {
		v := make([]float64, len(sdk.Features))
		for j := range v {
			v[j] = float64(k*1000 + i + j)
		}
		v[3] = math.NaN()
		src := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		b.Rows = append(b.Rows, sdk.FeatureRow{Src: src, Start: start, End: start.Add(5 * time.Second), Values: v})
	}
	return b
}

func faultAlerts(k, n int) []sdk.Alert {
	out := make([]sdk.Alert, n)
	for i := range out {
		start := faultBase.Add(time.Duration(k) * 5 * time.Second)
		out[i] = sdk.Alert{ID: fmt.Sprintf("fault-%d-%d", k, i), Sensor: "fault", Detector: "d", Label: "port_scan", Score: 0.9,
			Severity: sdk.SeverityHigh, Src: netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), Window: 5 * time.Second,
			Start: start, End: start.Add(5 * time.Second), Time: start.Add(6 * time.Second),
			TopFeatures: []sdk.FeatureValue{{Name: sdk.FeaturePackets, Value: math.NaN(), Weight: 1}}, Details: []byte(`{"k":1}`)}
	}
	return out
}

// TestDatabaseGoesAway stops PostgreSQL in the middle of a sequence of
// writes: writes fail (with errors and health that do not show the
// password) while it is down; once it is back, re-sending everything not
// acknowledged, as the core does, and some batches that were (a crash
// between commit and ack), stores every row exactly once.
func TestDatabaseGoesAway(t *testing.T) {
	t.Parallel()
	srv := pgtest.StartCluster(t)
	p := startSink(t, srv.URL(), nil)
	w := newWriter(t, p)
	const batches, rows, alertsPer = 40, 300, 3

	recs := make([]sdk.Records, 0, 2*batches)
	for k := range batches {
		recs = append(recs, sdk.Records{Seq: uint64(2*k + 1), Features: faultBatch(k, rows)})
		recs = append(recs, sdk.Records{Seq: uint64(2*k + 2), Alerts: faultAlerts(k, alertsPer)})
	}
	var failed []sdk.Records
	var stopOnce sync.Once
	stopped := make(chan struct{})
	for i, rec := range recs {
		if i == len(recs)/3 {
			// Stop while the next batches are on their way.
			go stopOnce.Do(func() { srv.Stop(); close(stopped) })
		}
		if i == len(recs)/3+4 {
			<-stopped
		}
		if err := w.write(rec); err != nil {
			if strings.Contains(err.Error(), srv.Password()) {
				t.Errorf("write error contains the password: %v", err)
			}
			failed = append(failed, rec)
		}
	}
	<-stopped
	if len(failed) < len(recs)/2 {
		t.Fatalf("only %d of %d writes failed with the database down", len(failed), len(recs))
	}
	st, err := p.conn.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Healthy || st.Message == "" || strings.Contains(st.Message, srv.Password()) {
		t.Errorf("Stats while down: healthy %v, message %q; want unhealthy, a message, no password", st.Healthy, st.Message)
	}
	if st.Counters["write_errors"] == 0 {
		t.Errorf("Stats while down: write_errors = 0")
	}
	t.Logf("while down: %d of %d writes failed; health %q", len(failed), len(recs), st.Message)

	srv.Start()
	// The core re-sends with backoff until the sink accepts.
	deadline := time.Now().Add(30 * time.Second)
	for len(failed) > 0 {
		if err := w.write(failed[0]); err != nil {
			if time.Now().After(deadline) {
				t.Fatalf("re-send after restart still fails: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		failed = failed[1:]
	}
	// Batches acknowledged before the stop, re-sent (same Seq) after a crash.
	for _, rec := range recs[:6] {
		if err := w.write(rec); err != nil {
			t.Fatalf("re-send of batch %d: %v", rec.Seq, err)
		}
	}

	c := db(t, srv.URL())
	if n := count(t, c, "SELECT count(*) FROM aggregated_features"); n != batches*rows {
		t.Errorf("aggregated_features holds %d rows, want %d", n, batches*rows)
	}
	if n := count(t, c, "SELECT count(DISTINCT (window_size, src_ip, window_start, sensor)) FROM aggregated_features"); n != batches*rows {
		t.Errorf("aggregated_features holds %d distinct keys, want %d", n, batches*rows)
	}
	if n := count(t, c, "SELECT count(*) FROM detected_alerts"); n != batches*alertsPer {
		t.Errorf("detected_alerts holds %d rows, want %d", n, batches*alertsPer)
	}
	if n := count(t, c, "SELECT count(DISTINCT id) FROM detected_alerts"); n != batches*alertsPer {
		t.Errorf("detected_alerts holds %d distinct IDs, want %d", n, batches*alertsPer)
	}
	// Values are those of the batches: spot-check one row.
	var v0 float64
	var v3 *float64
	if err := c.QueryRow(t.Context(), "SELECT packets_total, bandwidth_bps FROM aggregated_features WHERE window_start = $1 AND src_ip = '10.0.0.7'",
		faultBase.Add(17*5*time.Second)).Scan(&v0, &v3); err != nil {
		t.Fatal(err)
	}
	if v0 != 17*1000+7 || v3 != nil {
		t.Errorf("row 17/10.0.0.7: packets_total %v, bandwidth_bps %v; want 17007 and NULL (NaN)", v0, v3)
	}
	st, err = p.conn.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !st.Healthy {
		t.Errorf("Stats after recovery: unhealthy: %s", st.Message)
	}
	if st.Counters["features_duplicate"] == 0 || st.Counters["alerts_duplicate"] == 0 {
		t.Errorf("counters %v: want the re-sent rows counted as duplicates", st.Counters)
	}
	if strings.Contains(p.logs.String(), srv.Password()) {
		t.Errorf("plugin log contains the password")
	}
}

// TestPacketResend writes packet batches (frames cut to snaplen), re-sends
// some, and checks every packet is stored once with its fields.
func TestPacketResend(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t)
	p := startSink(t, srv.URL(), map[string]any{"raw_packets": true, "snaplen": 16, "batch_rows": 100})
	w := newWriter(t, p)
	const n, per = 5, 250 // 250 packets per batch: three chunks of batch_rows
	var recs []sdk.Records
	for k := range n {
		b := &sdk.PacketBatch{FirstIndex: uint64(k * per)}
		for i := range per {
			pk := sdk.Packet{Timestamp: faultBase.Add(time.Duration(k*per+i)*time.Millisecond).UnixNano() + 123,
				SrcPort: 40000 + uint16(i), DstPort: 443, Protocol: sdk.ProtoTCP, TCPFlags: sdk.TCPSyn, Length: 1500,
				Frame: []byte(strings.Repeat("x", 60))}
			if i%50 == 7 {
				pk.SetAddrs(netip.MustParseAddr("2001:db8::7"), netip.MustParseAddr("2001:db8::1"))
				pk.Flags = sdk.PacketIPv6
			} else if i%50 == 9 {
				pk.Flags = sdk.PacketNonIP // zero addresses
			} else {
				pk.SetAddrs(netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.2"))
			}
			b.Append(&pk)
		}
		recs = append(recs, sdk.Records{Packets: b})
	}
	for _, r := range recs {
		if err := w.write(r); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range recs[1:3] {
		r.Seq = 1000
		if err := w.write(r); err != nil {
			t.Fatal(err)
		}
	}
	c := db(t, srv.URL())
	if got := count(t, c, "SELECT count(*) FROM raw_packets"); got != n*per {
		t.Errorf("raw_packets holds %d rows, want %d", got, n*per)
	}
	if got := count(t, c, "SELECT count(*) FROM raw_packets WHERE length(frame) = 16 AND length = 1500 AND dst_port = 443 AND protocol = 6 AND tcp_flags = 2 AND sensor = 'test-sensor'"); got != n*per {
		t.Errorf("%d rows with the expected fields and a 16-byte frame, want %d", got, n*per)
	}
	if got := count(t, c, "SELECT count(*) FROM raw_packets WHERE src IS NULL AND dst IS NULL"); got != n*per/50 {
		t.Errorf("%d non-IP rows with NULL addresses, want %d", got, n*per/50)
	}
	if got := count(t, c, "SELECT count(*) FROM raw_packets WHERE src = '2001:db8::7' AND family(src) = 6"); got != n*per/50 {
		t.Errorf("%d IPv6 rows, want %d", got, n*per/50)
	}
	if got := count(t, c, "SELECT count(*) FROM raw_packets WHERE src = '192.0.2.1' AND family(src) = 4"); got != n*per*48/50 {
		t.Errorf("%d IPv4 rows (stored as IPv4, not mapped), want %d", got, n*per*48/50)
	}
	// Microsecond time, rounded down from the packet's nanoseconds.
	var first time.Time
	if err := c.QueryRow(t.Context(), "SELECT min(time) FROM raw_packets").Scan(&first); err != nil {
		t.Fatal(err)
	}
	if !first.Equal(faultBase) {
		t.Errorf("first packet time %v, want %v", first.UTC(), faultBase)
	}
}
