package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netguardian/netguardian/core/host"
	"github.com/netguardian/netguardian/core/pipeline"
	"github.com/netguardian/netguardian/core/store"
	"github.com/netguardian/netguardian/sdk"
)

// base is the packet time of the fixtures' first window.
var base = time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)

var fixtureSources = []netip.Addr{
	netip.MustParseAddr("10.0.0.1"),
	netip.MustParseAddr("10.0.0.2"),
	netip.MustParseAddr("10.0.0.3"),
	netip.MustParseAddr("2001:db8::1"),
}

const (
	fixtureWindows = 12 // 5 s windows per source: one minute
	fixtureAlerts  = 30
)

// fixturePackets is source k's packets in 5 s window i; protocols split
// them tcp 50 %, udp 30 %, icmp 10 %, other 10 %; a packet is 100 bytes.
func fixturePackets(k, i int) float64 { return float64((k+1)*100 + i*10) }

// fixtureBatch builds the 5 s or 30 s windows of the fixtures. The
// handshake latency is NaN (no handshake), to check NaN → null.
func fixtureBatch(window time.Duration) *sdk.FeatureBatch {
	b := &sdk.FeatureBatch{Sensor: "lab", Window: window, SchemaVersion: sdk.FeatureSchemaVersion, Names: sdk.Features}
	n := fixtureWindows
	if window == 30*time.Second {
		n = 2
	}
	for i := range n {
		for k, src := range fixtureSources {
			p := fixturePackets(k, i)
			if window == 30*time.Second {
				p *= 6
			}
			v := map[string]float64{
				sdk.FeaturePackets: p, sdk.FeatureBytes: p * 100, sdk.FeaturePacketRate: p / window.Seconds(), sdk.FeatureBandwidth: p * 800 / window.Seconds(),
				sdk.FeatureTCPPackets: p * 0.5, sdk.FeatureUDPPackets: p * 0.3, sdk.FeatureICMPPackets: p * 0.1, sdk.FeatureOtherPackets: p * 0.1,
				sdk.FeatureTCPBytes: p * 50, sdk.FeatureUDPBytes: p * 30, sdk.FeatureICMPBytes: p * 10, sdk.FeatureOtherBytes: p * 10,
				sdk.FeatureHandshakeLatency: math.NaN(),
			}
			row := sdk.FeatureRow{Src: src, Start: base.Add(time.Duration(i) * window), End: base.Add(time.Duration(i+1) * window), Values: make([]float64, len(sdk.Features))}
			for j, name := range sdk.Features {
				row.Values[j] = v[name]
			}
			if k == 3 && i == n-1 {
				row.Flags = sdk.WindowPartial | sdk.WindowEstimated
			}
			b.Rows = append(b.Rows, row)
		}
	}
	return b
}

var (
	fixtureLabels     = []string{"portscan", "dos", "bruteforce"}
	fixtureSeverities = []sdk.Severity{sdk.SeverityLow, sdk.SeverityMedium, sdk.SeverityHigh, sdk.SeverityCritical}
)

// fixtureAlert i is about source i%4, label i%3, severity i%4, for the
// 30 s window ending at base+(i+1)*30s.
func fixtureAlert(i int) sdk.Alert {
	end := base.Add(time.Duration(i+1) * 30 * time.Second)
	return sdk.Alert{
		ID: fmt.Sprintf("a%03d", i), Sensor: "lab", Detector: "xgb", Src: fixtureSources[i%len(fixtureSources)],
		Window: 30 * time.Second, Start: end.Add(-30 * time.Second), End: end, Time: end.Add(time.Second),
		Label: fixtureLabels[i%len(fixtureLabels)], Score: 0.5 + float64(i)/100, Severity: fixtureSeverities[i%len(fixtureSeverities)],
		RunnerUp: "benign", RunnerUpScore: 0.1,
		TopFeatures: []sdk.FeatureValue{{Name: sdk.FeatureSYN, Value: float64(100 + i), Weight: 0.7}, {Name: sdk.FeatureDistinctDstPorts, Value: math.NaN(), Weight: 0.2}},
		Details:     json.RawMessage(`{"model":"v1"}`),
	}
}

// newFixtureStore is an in-memory store holding the fixtures.
func newFixtureStore(t testing.TB) *store.Memory {
	t.Helper()
	m := store.NewMemory(store.Options{})
	ctx := context.Background()
	for _, w := range []time.Duration{5 * time.Second, 30 * time.Second} {
		if err := m.AppendFeatures(ctx, fixtureBatch(w)); err != nil {
			t.Fatal(err)
		}
	}
	var alerts []sdk.Alert
	for i := range fixtureAlerts {
		alerts = append(alerts, fixtureAlert(i))
	}
	if err := m.AppendAlerts(ctx, alerts); err != nil {
		t.Fatal(err)
	}
	return m
}

// statsFeed is a pipeline.Stats the test changes; Stats adds packets on
// every call, as a running sensor's counters grow.
type statsFeed struct {
	packets, bytes atomic.Uint64
	perCall        atomic.Uint64
	mu             chan struct{} // a one-slot lock, so tests can swap fields
	st             pipeline.Stats
}

func newStatsFeed() *statsFeed {
	f := &statsFeed{mu: make(chan struct{}, 1)}
	f.perCall.Store(1000)
	f.st = pipeline.Stats{
		Windows: map[string]uint64{"5s": 48, "30s": 8, "180s": 1},
		Plugins: []host.Health{
			{Name: "replay", Kind: sdk.KindCapture, Plugin: "capture-pcap", Version: "1.0.0", State: host.StateRunning, PID: 101},
			{Name: "xgb", Kind: sdk.KindDetector, Plugin: "detector-xgboost", Version: "1.0.0", State: host.StateRunning, PID: 102, Restarts: 2, Failures: 3},
			{Name: "pg", Kind: sdk.KindSink, Plugin: "sink-postgres", Version: "1.0.0", State: host.StateRunning, PID: 103},
		},
		Detectors: []pipeline.DetectorStats{{Name: "xgb", Calls: 10, Alerts: 30, Failures: 1, Queue: 4, Latency: pipeline.Histogram{
			Buckets: []float64{0.001, 0.005, 0.01}, Counts: []uint64{1, 3, 10}, Count: 10, Sum: 0.05,
		}}},
		Sinks:       []pipeline.SinkStats{{Name: "pg", Acked: 20, Rejected: 1, Queue: 2}},
		Captures:    map[string]sdk.CaptureCounters{"replay": {Packets: 5000}},
		PacketQueue: 3,
		Alerts:      30,
	}
	return f
}

func (f *statsFeed) set(change func(st *pipeline.Stats)) {
	f.mu <- struct{}{}
	change(&f.st)
	<-f.mu
}

func (f *statsFeed) Stats() pipeline.Stats {
	f.mu <- struct{}{}
	st := f.st
	st.Plugins = append([]host.Health(nil), f.st.Plugins...)
	st.Sinks = append([]pipeline.SinkStats(nil), f.st.Sinks...)
	st.Detectors = append([]pipeline.DetectorStats(nil), f.st.Detectors...)
	<-f.mu
	n := f.perCall.Load()
	st.Packets = f.packets.Add(n)
	st.Bytes = f.bytes.Add(n * 100)
	return st
}

func fixturePlugins() []PluginInfo {
	return []PluginInfo{
		{Name: "replay", Info: sdk.Info{Name: "capture-pcap", Version: "1.0.0", Kind: sdk.KindCapture, SDKVersion: "0.1.0", FeatureSchemaVersion: 1,
			Config: sdk.Schema{{Name: "path", Type: sdk.TypeString, Required: true, Description: "capture file"}, {Name: "speed", Type: sdk.TypeNumber, Default: 1.0}}}},
		{Name: "xgb", Info: sdk.Info{Name: "detector-xgboost", Version: "1.0.0", Kind: sdk.KindDetector, SDKVersion: "0.1.0", FeatureSchemaVersion: 1,
			Features: []string{sdk.FeatureSYN, sdk.FeaturePackets}, Windows: []time.Duration{30 * time.Second, 180 * time.Second}, Labels: []string{"benign", "portscan"},
			Config: sdk.Schema{{Name: "model", Type: sdk.TypeString, Required: true}}}},
		{Name: "pg", Info: sdk.Info{Name: "sink-postgres", Version: "1.0.0", Kind: sdk.KindSink, SDKVersion: "0.1.0", FeatureSchemaVersion: 1, ServesStore: true,
			Records: []sdk.RecordKind{sdk.RecordFeatures, sdk.RecordAlerts},
			Config:  sdk.Schema{{Name: "dsn", Type: sdk.TypeString, Required: true, Sensitive: true, Default: "postgres://u:secret@db/x"}}}},
	}
}

// testLog discards logs unless the test fails, when they help.
func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

type fixture struct {
	srv   *Server
	http  *httptest.Server
	store *store.Memory
	stats *statsFeed
}

// newFixture serves a server over the fixtures on a loopback httptest
// server, with the snapshot loop running until the test ends. change may
// adjust the config and tuning.
func newFixture(t testing.TB, change func(*Config, *tuning)) *fixture {
	t.Helper()
	f := &fixture{store: newFixtureStore(t), stats: newStatsFeed()}
	cfg := Config{Listen: "127.0.0.1:0", Store: f.store, Stats: f.stats.Stats, Plugins: fixturePlugins, Log: testLog(t),
		RateLimit: 1000, RateBurst: 10_000}
	tune := defaultTuning()
	if change != nil {
		change(&cfg, &tune)
	}
	s, err := newServer(cfg, tune)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = s
	f.http = httptest.NewServer(s.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		f.http.CloseClientConnections()
		f.http.Close()
	})
	return f
}

// get requests path and returns the status, headers and body.
func (f *fixture) get(t testing.TB, path string, header ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.http.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := f.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header, body
}

// getJSON requests path, wants status and decodes the body into out.
func (f *fixture) getJSON(t testing.TB, path string, status int, out any) {
	t.Helper()
	code, h, body := f.get(t, path)
	if code != status {
		t.Fatalf("GET %s: status %d, want %d; body %s", path, code, status, body)
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("GET %s: content type %q", path, ct)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("GET %s: %v in %s", path, err, body)
		}
	}
}
