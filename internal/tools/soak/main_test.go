package main

import (
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseMetricsSumsLabelledSeries(t *testing.T) {
	body := `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 85
netguardian_packets_total 1.1e+07
netguardian_dropped_packets_total{name="",stage="aggregator"} 3
netguardian_dropped_packets_total{name="postgres",stage="sink"} 40
netguardian_dropped_packets_total{name="replay",stage="kernel"} 0
netguardian_plugin_up{kind="sink",plugin="odd \"name\", with } and spaces",state="running"} 1
netguardian_queue_depth{name="postgres",stage="sink"} 7 1700000000000
`
	m, err := parseMetrics(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what      string
		got, want float64
	}{
		{"goroutines", m.goroutines(), 85},
		{"packets", m.packets(), 11e6},
		{"all drops", m.drops(""), 43},
		{"sink drops", m.drops("sink"), 40},
		{"sink queue (with a timestamp)", m.sum("netguardian_queue_depth", map[string]string{"stage": "sink"}), 7},
		{"series with quotes and braces in a label", m.sum("netguardian_plugin_up", map[string]string{"plugin": `odd "name", with } and spaces`}), 1},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.what, c.got, c.want)
		}
	}
	t.Logf("parsed %d metric names", len(m))
}

func TestParseMetricsNamesTheBadLine(t *testing.T) {
	_, err := parseMetrics(strings.NewReader("go_goroutines 85\nnetguardian_packets_total{stage=\"x} 1\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("want an error naming line 2, got %v", err)
	}
	_, err = parseMetrics(strings.NewReader("go_goroutines many\n"))
	if err == nil || !strings.Contains(err.Error(), `"many"`) {
		t.Fatalf("want an error naming the value, got %v", err)
	}
}

func TestTrendGrowthPer10Minutes(t *testing.T) {
	var x, flat, leak []float64
	for i := 0; i <= 150; i++ { // 25 minutes of 10 s samples
		m := float64(i) / 6
		x = append(x, m)
		// A sawtooth of ±5 MB around 200 MB, as a GC'd heap looks.
		flat = append(flat, 200+5*math.Sin(float64(i)))
		// The same plus a leak of 1 MB a minute.
		leak = append(leak, 200+5*math.Sin(float64(i))+m)
	}
	f := newTrend("flat", x, flat)
	f.limit = math.Max(rssFlatMB, rssFlatShare*f.mean)
	l := newTrend("leak", x, leak)
	l.limit = math.Max(rssFlatMB, rssFlatShare*l.mean)
	t.Logf("flat: %+.2f MB/10 min (limit %.1f); leak: %+.2f MB/10 min", f.per10min, f.limit, l.per10min)
	if !f.ok() || f.verdict() != "flat" {
		t.Errorf("sawtooth without a trend: %+.2f MB/10 min, verdict %q", f.per10min, f.verdict())
	}
	if math.Abs(l.per10min-10) > 0.5 || l.ok() || l.verdict() != "GROWING" {
		t.Errorf("1 MB/min leak: %+.2f MB/10 min, verdict %q; want about +10 and GROWING", l.per10min, l.verdict())
	}
	if short := newTrend("short", x[:2], flat[:2]); short.ok() {
		t.Error("two samples must not pass")
	}
	// Two minutes of a noisy series: its growth cannot be told from noise.
	noisy := newTrend("noisy", x[:12], leak[:12])
	noisy.limit = rssFlatMB
	if noisy.ok() || noisy.verdict() != "inconclusive" {
		t.Errorf("2 min of sawtooth: %+.2f ± %.2f MB/10 min, verdict %q; want inconclusive",
			noisy.per10min, noisy.stderr10, noisy.verdict())
	}
	if f.stderr10 <= 0 || f.stderr10 > 1 {
		t.Errorf("standard error of the sawtooth's growth: %.2f MB/10 min, want in (0, 1]", f.stderr10)
	}
	// Memory handed back (a shrinking series) is no growth.
	var back []float64
	for i := range x {
		back = append(back, 300-0.5*x[i])
	}
	b := newTrend("back", x, back)
	b.limit = rssFlatMB
	if !b.ok() || b.verdict() != "shrinking" {
		t.Errorf("shrinking by %.2f MB/10 min: ok %v, verdict %q", b.per10min, b.ok(), b.verdict())
	}
}

func TestChildProcessesAndRSS(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skipf("no sleep command: %v", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	kids, err := childProcesses(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if kids[cmd.Process.Pid] != "sleep" {
		t.Fatalf("children of %d: %v; want pid %d named sleep", os.Getpid(), kids, cmd.Process.Pid)
	}
	kb, err := vmRSSKB(os.Getpid())
	if err != nil || kb <= 0 {
		t.Fatalf("VmRSS of the test: %v kB, %v", kb, err)
	}
	t.Logf("children %v; test process RSS %.0f kB", kids, kb)
}

func TestCSVRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "soak.csv")
	rec, err := newRecorder(path)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 26, 0, 18, 0, 0, time.UTC)
	m, err := parseMetrics(strings.NewReader(`netguardian_packets_total 1000
netguardian_dropped_packets_total{name="postgres",stage="sink"} 40
netguardian_dropped_packets_total{name="",stage="aggregator"} 2
go_goroutines 86
go_memstats_heap_inuse_bytes 1.048576e+08
netguardian_alerts_total 5
`))
	if err != nil {
		t.Fatal(err)
	}
	want := sample{at: start.Add(90 * time.Second), minutes: 1.5, metrics: m, spoolMB: 12.5, pps: 99000, dropsPS: 4,
		rssMB:      map[string]float64{"netguardian": 300.5, "sink-postgres": 30},
		goroutines: map[string]float64{"netguardian": 86, "detector-xgboost": 14},
		heapLiveMB: map[string]float64{"detector-xgboost": 11.5},
		cpuPct:     map[string]float64{"postgres": 20}, machinePct: 150, cpuPressure: 42.5}
	if err := rec.write(want); err != nil {
		t.Fatal(err)
	}
	rec.close()
	got, gotStart, err := readCSV(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !gotStart.Equal(start) {
		t.Fatalf("%d samples from %v; want 1 from %v", len(got), gotStart, start)
	}
	g := got[0]
	for _, c := range []struct {
		what      string
		got, want float64
	}{
		{"packets", g.metrics.packets(), 1000}, {"drops", g.metrics.drops(""), 42}, {"sink drops", g.metrics.drops("sink"), 40},
		{"goroutines", g.metrics.goroutines(), 86}, {"heap MB", g.metrics.heapMB(), 100}, {"pps", g.pps, 99000},
		{"spool", g.spoolMB, 12.5}, {"core RSS", g.rssMB["netguardian"], 300.5}, {"postgres CPU", g.cpuPct["postgres"], 20},
		{"machine CPU", g.machinePct, 150}, {"CPU pressure", g.cpuPressure, 42.5},
		{"core goroutines", g.goroutines["netguardian"], 86}, {"detector goroutines", g.goroutines["detector-xgboost"], 14},
		{"detector heap", g.heapLiveMB["detector-xgboost"], 11.5},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v after the round trip, want %v", c.what, c.got, c.want)
		}
	}
	if _, ok := g.rssMB["capture-pcap"]; ok {
		t.Error("a process without a sample must stay absent, not 0")
	}
	if _, ok := g.goroutines["capture-pcap"]; ok {
		t.Error("a plugin that has not reported must stay absent, not 0")
	}
}

// A plugin's goroutines growing fails the verdict like the core's would.
func TestVerdictCountsPluginGoroutines(t *testing.T) {
	run := func(leak float64) report {
		var ss []sample
		for i := 0; i <= 120; i++ { // 20 minutes of 10 s samples
			m := float64(i) / 6
			s := newSample(time.Unix(int64(i*10), 0), m)
			s.metrics = metrics{"go_goroutines": {{value: 85}}, "netguardian_packets_total": {{value: float64(i) * 1e6}}}
			for _, n := range processColumns {
				s.rssMB[n] = 40
			}
			s.goroutines["netguardian"] = 85
			s.goroutines["detector-xgboost"] = 14 + math.Floor(leak*m)
			s.heapLiveMB["detector-xgboost"] = 12
			ss = append(ss, s)
		}
		return analyze(ss, options{rate: 100000, duration: 20 * time.Minute, warmup: 5 * time.Minute, interval: 10 * time.Second}, time.Unix(0, 0))
	}
	ok, leaking := run(0), run(1)
	if !ok.enough() || !ok.flat() || len(ok.goroutines) != 2 || len(ok.heapLive) != 1 {
		t.Fatalf("steady plugin: flat %v, goroutine trends %+v, heap trends %d", ok.flat(), ok.goroutines, len(ok.heapLive))
	}
	if leaking.flat() || leaking.goroutines[1].name != "detector-xgboost" || leaking.goroutines[1].verdict() != "GROWING" {
		t.Fatalf("a goroutine a minute in detector-xgboost: flat %v, %+v", leaking.flat(), leaking.goroutines)
	}
	var out strings.Builder
	leaking.print(&out, "soak.csv")
	if !strings.Contains(out.String(), "goroutines detector-xgboost") || !strings.Contains(out.String(), "verdict: NOT FLAT") {
		t.Fatalf("report:\n%s", out.String())
	}
}
