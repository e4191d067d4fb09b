package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/netguardian/netguardian/internal/pgtest"
	"github.com/netguardian/netguardian/sdk"
)

// Benchmarks go through the plugin process as the core does (write stream
// and gRPC store service). Each iteration is a fixed amount of work, so
// `-benchtime 1x` (make bench) still measures something; the metrics are
// rates and latency percentiles, not ns/op.

var benchClock atomic.Int64 // keeps generated packet times unique across iterations

func benchPackets(batch, frameBase int) *sdk.PacketBatch {
	sizes := []int{64, 64, 128, 576, 1514} // an Internet-ish mix, ~470 bytes on average
	frame := make([]byte, 1514)
	b := &sdk.PacketBatch{FirstIndex: uint64(benchClock.Load())}
	src, dst := netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("198.51.100.20")
	for i := range batch {
		ts := benchClock.Add(1000) // a packet every microsecond
		p := sdk.Packet{Timestamp: time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC).UnixNano() + ts, SrcPort: uint16(1024 + i), DstPort: 443,
			Protocol: sdk.ProtoTCP, TCPFlags: sdk.TCPAck, Length: uint32(sizes[(i+frameBase)%len(sizes)])}
		p.SetAddrs(src, dst)
		p.Frame = frame[:p.Length]
		b.Append(&p)
	}
	return b
}

// BenchmarkRawPackets writes packet batches of 1024 with their frames:
// one COPY per batch into raw_packets, guarded by the batch key.
func BenchmarkRawPackets(b *testing.B) {
	srv := pgtest.Start(b)
	p := startSink(b, srv.URL(), map[string]any{"raw_packets": true, "partition": "1h"})
	w := newWriter(b, p)
	const batches, size = 100, 1024
	recs := make([]sdk.Records, batches)
	var frameBytes int
	if err := w.write(sdk.Records{Packets: benchPackets(size, 0)}); err != nil { // warm the pool up
		b.Fatal(err)
	}
	cpu0 := struct{ plugin, db float64 }{cpuSeconds(p.conn.PID()), backendCPU(b, srv.URL())}
	b.ResetTimer()
	var elapsed time.Duration
	for range b.N {
		b.StopTimer()
		frameBytes = 0
		for i := range recs {
			recs[i] = sdk.Records{Packets: benchPackets(size, i)}
			for _, l := range recs[i].Packets.Lengths {
				frameBytes += int(l)
			}
		}
		b.StartTimer()
		start := time.Now()
		for _, r := range recs {
			if _, err := w.send(r); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.flush(); err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
	}
	b.StopTimer()
	n := float64(b.N * batches * size)
	b.ReportMetric(n/elapsed.Seconds(), "packets/s")
	// CPU per packet does not depend on what else the machine runs.
	b.ReportMetric((cpuSeconds(p.conn.PID())-cpu0.plugin)/n*1e6, "plugin_cpu_us/packet")
	b.ReportMetric((backendCPU(b, srv.URL())-cpu0.db)/n*1e6, "db_cpu_us/packet")
	b.ReportMetric(float64(b.N*frameBytes)/elapsed.Seconds()/1e6, "frameMB/s")
	reportRowsPerTransaction(b, p, "packets_written")
	c := db(b, srv.URL())
	if got := count(b, c, "SELECT count(*) FROM raw_packets"); got != int64(n)+size {
		b.Fatalf("raw_packets holds %d rows after writing %d", got, int64(n))
	}
}

// BenchmarkFeatures writes 5s feature batches of 1000 sources with every
// feature (staging COPY + INSERT ... ON CONFLICT DO NOTHING).
func BenchmarkFeatures(b *testing.B) {
	srv := pgtest.Start(b)
	p := startSink(b, srv.URL(), nil)
	w := newWriter(b, p)
	const batches, rows = 50, 1000
	base := time.Date(2025, 8, 1, 0, 0, 0, 0, time.UTC)
	k := 0
	var elapsed time.Duration
	cpu0 := struct{ plugin, db float64 }{cpuSeconds(p.conn.PID()), backendCPU(b, srv.URL())}
	for range b.N {
		b.StopTimer()
		recs := make([]sdk.Records, batches)
		for i := range recs {
			fb := &sdk.FeatureBatch{Sensor: "bench", Window: 5 * time.Second, Names: sdk.Features}
			start := base.Add(time.Duration(k) * 5 * time.Second)
			k++
			vals := make([]float64, rows*len(sdk.Features))
			for r := range rows {
				v := vals[r*len(sdk.Features) : (r+1)*len(sdk.Features)]
				for j := range v {
					v[j] = float64(r*j%1000) + 0.25
				}
				fb.Rows = append(fb.Rows, sdk.FeatureRow{Src: netip.AddrFrom4([4]byte{10, 1, byte(r >> 8), byte(r)}), Start: start, End: start.Add(5 * time.Second), Values: v})
			}
			recs[i] = sdk.Records{Features: fb}
		}
		b.StartTimer()
		t0 := time.Now()
		for _, r := range recs {
			if _, err := w.send(r); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.flush(); err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(t0)
	}
	n := float64(b.N * batches * rows)
	b.ReportMetric(n/elapsed.Seconds(), "rows/s")
	b.ReportMetric((cpuSeconds(p.conn.PID())-cpu0.plugin)/n*1e6, "plugin_cpu_us/row")
	b.ReportMetric((backendCPU(b, srv.URL())-cpu0.db)/n*1e6, "db_cpu_us/row")
	reportRowsPerTransaction(b, p, "features_written")
}

// reportRowsPerTransaction reports how many rows the sink's group commit
// put in one transaction on average.
func reportRowsPerTransaction(b *testing.B, p *launched, rows string) {
	st, err := p.conn.Stats(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	if tx := st.Counters["write_transactions"]; tx > 0 {
		b.ReportMetric(float64(st.Counters[rows])/float64(tx), "rows/transaction")
	}
}

// The query benchmark's database: seeded once per test binary.
var large struct {
	once              sync.Once
	srv               *pgtest.Server
	st                *state
	base, fEnd, aEnd  time.Time
	features, sources int
	alerts            int
	err               error
}

func largeDB(b *testing.B) {
	large.once.Do(func() {
		large.features, large.sources, large.alerts = 500_000, 1000, 100_000
		if os.Getenv("NG_BENCH_LARGE") == "1" {
			large.features, large.sources, large.alerts = 10_000_000, 2000, 1_000_000
		}
		// Outlives the benchmark that created it: the other query
		// benchmarks reuse it. pgtest.Shutdown in TestMain removes it.
		large.srv = pgtest.Start(&onceTB{TB: b})
		cfg := defaultConfig()
		cfg.URL, cfg.Partition = large.srv.URL(), 6*time.Hour
		large.st = openState(&onceTB{TB: b}, large.srv.URL(), cfg)
		large.base = time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC)
		t0 := time.Now()
		large.fEnd, large.aEnd = seed(b, large.st, large.base, large.features, large.sources, large.alerts)
		b.Logf("seeded %d feature rows (+1/6 as 30s) and %d alerts in %v", large.features, large.alerts, time.Since(t0).Round(time.Millisecond))
	})
	if large.srv == nil {
		b.Fatal("large database setup failed")
	}
}

// onceTB keeps a shared fixture alive past the benchmark that made it:
// its cleanups are dropped (the shared cluster goes at the end of the run).
type onceTB struct{ testing.TB }

func (o *onceTB) Cleanup(func()) {}

// BenchmarkQueryLatency measures the API queries through the plugin's
// store service against a large database (NG_BENCH_LARGE=1: 10M feature
// rows and 1M alerts; default 500k and 100k): p50 and p99 over a fixed
// number of queries per iteration.
func BenchmarkQueryLatency(b *testing.B) {
	largeDB(b)
	p := startSink(b, large.srv.URL(), nil)
	st := p.conn.Store()
	ctx := context.Background()
	last := func(d time.Duration) sdk.TimeRange { return sdk.TimeRange{From: large.fEnd.Add(-d), To: large.fEnd} }
	var cursor string
	for _, bc := range []struct {
		name    string
		queries int
		run     func(i int) error
	}{
		{"QueryAlerts/newest100", 200, func(int) error {
			_, err := st.QueryAlerts(ctx, sdk.AlertQuery{Limit: 100})
			return err
		}},
		{"QueryAlerts/pages", 200, func(int) error {
			pg, err := st.QueryAlerts(ctx, sdk.AlertQuery{Limit: 100, Cursor: cursor})
			cursor = pg.NextCursor
			return err
		}},
		{"QueryAlerts/label", 200, func(int) error {
			_, err := st.QueryAlerts(ctx, sdk.AlertQuery{Label: "dns_tunnel", Severity: sdk.SeverityHigh, Limit: 100})
			return err
		}},
		{"QueryAlerts/src", 200, func(i int) error {
			_, err := st.QueryAlerts(ctx, sdk.AlertQuery{Src: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), Limit: 100})
			return err
		}},
		{"QueryTopSources/5m", 200, func(int) error {
			_, err := st.QueryTopSources(ctx, sdk.TopSourcesQuery{By: "bytes", Range: last(5 * time.Minute), Limit: 10})
			return err
		}},
		{"QueryTopSources/1h", 20, func(int) error {
			_, err := st.QueryTopSources(ctx, sdk.TopSourcesQuery{By: "bytes", Range: last(time.Hour), Limit: 10})
			return err
		}},
		{"QueryProtocols/5m", 200, func(int) error {
			_, err := st.QueryProtocols(ctx, last(5*time.Minute))
			return err
		}},
		{"QueryFeatures/src", 200, func(i int) error {
			_, err := st.QueryFeatures(ctx, sdk.FeatureQuery{Window: 5 * time.Second, Src: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8 % 4), byte(i)}), Limit: 360})
			return err
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var lat []time.Duration
			for range b.N {
				for i := range bc.queries {
					t0 := time.Now()
					if err := bc.run(i); err != nil {
						b.Fatal(err)
					}
					lat = append(lat, time.Since(t0))
				}
			}
			slices.Sort(lat)
			ms := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))]) / 1e6 }
			b.ReportMetric(ms(0.5), "p50_ms")
			b.ReportMetric(ms(0.99), "p99_ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// cpuSeconds returns the user+system CPU time of process pid (0 when it
// cannot be read).
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	k, _ := strconv.ParseFloat(f[12], 64)
	return (u + k) / 100 // USER_HZ
}

// backendCPU sums the CPU time of the server processes connected to the
// database of url (the plugin's pool), plus the WAL writer's.
func backendCPU(b *testing.B, url string) float64 {
	c := db(b, url)
	rows, err := c.Query(context.Background(), `SELECT pid FROM pg_stat_activity
		WHERE (datname = current_database() AND pid <> pg_backend_pid()) OR backend_type = 'walwriter'`)
	if err != nil {
		b.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		b.Fatal(err)
	}
	var sum float64
	for _, pid := range pids {
		sum += cpuSeconds(int(pid))
	}
	return sum
}
