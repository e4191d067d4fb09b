package api

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netguardian/netguardian/core/api/browsertest"
	"github.com/netguardian/netguardian/core/host"
	"github.com/netguardian/netguardian/core/pipeline"
	"github.com/netguardian/netguardian/core/store"
	"github.com/netguardian/netguardian/sdk"
)

// The README's docs/dashboard.png comes from the real sensor
// (cmd/netguardian's TestDashboardShowsLiveSensor); this test keeps its
// picture in its own temporary directory.

const attacker = "10.99.0.28"

// liveFeed plays a small network into the store the way the pipeline
// would: closed 5 s windows for a few sources (packet time advancing 5 s
// per tick), growing counters, and every few ticks an alert for the
// attacker.
type liveFeed struct {
	mem             *store.Memory
	srv             *Server
	packets, bytes  atomic.Uint64
	windows, alerts atomic.Uint64
	start           time.Time
	tick            int
	latencyObserved atomic.Uint64
	sources         []netip.Addr
}

func (f *liveFeed) stats() pipeline.Stats {
	n := f.latencyObserved.Load()
	return pipeline.Stats{
		Packets: f.packets.Load(), Bytes: f.bytes.Load(), Alerts: f.alerts.Load(),
		Windows: map[string]uint64{"5s": f.windows.Load(), "30s": f.windows.Load() / 6, "180s": f.windows.Load() / 36},
		Plugins: []host.Health{
			{Name: "replay", Kind: sdk.KindCapture, Plugin: "capture-pcap", Version: "0.1.0", State: host.StateRunning, PID: 4101},
			{Name: "xgb", Kind: sdk.KindDetector, Plugin: "detector-xgboost", Version: "0.1.0", State: host.StateRunning, PID: 4102},
			{Name: "archive", Kind: sdk.KindSink, Plugin: "sink-postgres", Version: "0.1.0", State: host.StateRunning, PID: 4103},
		},
		Detectors: []pipeline.DetectorStats{{Name: "xgb", Calls: n, Alerts: f.alerts.Load(), Latency: pipeline.Histogram{
			Buckets: []float64{0.001, 0.01, 0.1}, Counts: []uint64{n / 2, n, n}, Count: n, Sum: float64(n) * 0.002,
		}}},
		Sinks: []pipeline.SinkStats{{Name: "archive", Acked: n}},
	}
}

func (f *liveFeed) step(ctx context.Context) error {
	ws := f.start.Add(time.Duration(f.tick) * 5 * time.Second)
	b := &sdk.FeatureBatch{Sensor: "lab", Window: 5 * time.Second, SchemaVersion: sdk.FeatureSchemaVersion, Names: sdk.Features}
	var pk, by float64
	for k, src := range f.sources {
		p := float64(200 + 40*k + (f.tick*37+k*11)%90)
		if src.String() == attacker {
			p = 3000 + float64(f.tick%7)*150 // a SYN scan: many small packets
		}
		bytesPer := 400.0
		if src.String() == attacker {
			bytesPer = 60
		}
		v := map[string]float64{
			sdk.FeaturePackets: p, sdk.FeatureBytes: p * bytesPer, sdk.FeaturePacketRate: p / 5, sdk.FeatureBandwidth: p * bytesPer * 8 / 5,
			sdk.FeatureTCPPackets: p * 0.7, sdk.FeatureUDPPackets: p * 0.2, sdk.FeatureICMPPackets: p * 0.05, sdk.FeatureOtherPackets: p * 0.05,
			sdk.FeatureTCPBytes: p * bytesPer * 0.8, sdk.FeatureUDPBytes: p * bytesPer * 0.15, sdk.FeatureICMPBytes: p * bytesPer * 0.03, sdk.FeatureOtherBytes: p * bytesPer * 0.02,
			sdk.FeatureSYN: p * 0.1,
		}
		row := sdk.FeatureRow{Src: src, Start: ws, End: ws.Add(5 * time.Second), Values: make([]float64, len(sdk.Features))}
		for j, name := range sdk.Features {
			row.Values[j] = v[name]
		}
		b.Rows = append(b.Rows, row)
		pk += p
		by += p * bytesPer
	}
	if err := f.mem.AppendFeatures(ctx, b); err != nil {
		return err
	}
	f.packets.Add(uint64(pk))
	f.bytes.Add(uint64(by))
	f.windows.Add(uint64(len(f.sources)))
	f.latencyObserved.Add(1)
	if f.tick%3 == 2 {
		a := sdk.Alert{
			ID: fmt.Sprintf("live-%d", f.tick), Sensor: "lab", Detector: "xgb", Src: netip.MustParseAddr(attacker),
			Window: 30 * time.Second, Start: ws.Add(-25 * time.Second), End: ws.Add(5 * time.Second), Time: time.Now(),
			Label: "portscan", Score: 0.97, Severity: sdk.SeverityHigh, RunnerUp: "benign", RunnerUpScore: 0.02,
			TopFeatures: []sdk.FeatureValue{
				{Name: sdk.FeatureDistinctDstPorts, Value: 950, Weight: 0.61},
				{Name: sdk.FeatureSYN, Value: 3100, Weight: 0.22},
				{Name: sdk.FeatureRST, Value: 2900, Weight: 0.09},
			},
		}
		if err := f.mem.AppendAlerts(ctx, []sdk.Alert{a}); err != nil {
			return err
		}
		f.alerts.Add(1)
		f.srv.PublishAlert(a)
	}
	f.tick++
	return nil
}

// TestDashboardInBrowser opens the dashboard in headless Chromium against a
// store fed live, and checks that the counter moves, the chart is drawn and
// the attacker's alert shows up with its detail view.
func TestDashboardInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	if !browsertest.Available("") {
		t.Skipf("%s is not installed (scripts/install-deps.sh installs Debian's chromium)", browsertest.DefaultChromium)
	}
	const token = "browser-test-token"
	mem := store.NewMemory(store.Options{})
	feed := &liveFeed{mem: mem, start: time.Now().Add(-10 * time.Minute).Truncate(5 * time.Second)}
	for _, s := range []string{"192.168.10.5", "192.168.10.7", "192.168.10.12", attacker, "10.20.0.3", "2001:db8::42"} {
		feed.sources = append(feed.sources, netip.MustParseAddr(s))
	}
	srv, err := New(Config{
		Listen: "127.0.0.1:0", Token: token, Store: mem, Stats: feed.stats, Log: testLog(t),
		SnapshotInterval: 500 * time.Millisecond,
		Plugins:          fixturePlugins,
	})
	if err != nil {
		t.Fatal(err)
	}
	feed.srv = srv
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.ServeListener(ctx, ln) }()
	fed := make(chan error, 1)
	go func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			if err := feed.step(ctx); err != nil {
				fed <- err
				return
			}
			select {
			case <-ctx.Done():
				fed <- nil
				return
			case <-t.C:
			}
		}
	}()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
		if err := <-fed; err != nil {
			t.Errorf("feed: %v", err)
		}
	}()

	res, err := browsertest.Check(context.Background(), browsertest.Options{
		URL: "http://" + ln.Addr().String() + "/", Token: token, AlertSrc: attacker, Logf: t.Logf, Settle: 4 * time.Second, FilterBySource: true,
	})
	if res != nil {
		for _, e := range res.ConsoleErrors {
			t.Logf("browser console: %s", e)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Exceptions) > 0 {
		t.Fatalf("the page threw: %v", res.Exceptions)
	}
	if res.PacketsAfter <= res.PacketsBefore || res.ChartWidth <= 0 || res.ChartHeight <= 0 || res.AlertLabel != "portscan" || !res.Filtered {
		t.Fatalf("page showed %+v", res)
	}
	t.Logf("packets %v → %v, chart %d×%d, alert %q", res.PacketsBefore, res.PacketsAfter, res.ChartWidth, res.ChartHeight, res.AlertLabel)
	screenshotPath := filepath.Join(t.TempDir(), "dashboard.png")
	if err := os.MkdirAll(filepath.Dir(screenshotPath), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(screenshotPath, res.Screenshot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", screenshotPath, len(res.Screenshot))
}
