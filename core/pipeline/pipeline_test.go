package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netguardian/netguardian/core/host"
	"github.com/netguardian/netguardian/core/spool"
	"github.com/netguardian/netguardian/core/window"
	"github.com/netguardian/netguardian/internal/syncbuf"
	"github.com/netguardian/netguardian/sdk"
)

// These tests run the pipeline with real plugin processes (the host's
// testplugin as detector and sink) and feed it packets the way a capture
// does, through its packet queue.

var testPluginPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ng-pipeline-test")
	if err != nil {
		panic(err)
	}
	testPluginPath = filepath.Join(dir, "testplugin")
	if out, err := exec.Command("go", "build", "-o", testPluginPath, "../host/testdata/testplugin").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build testplugin: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// startPlugin starts the testplugin as a plugin of kind, named name, and
// configures it with cfg (mode "ok" unless cfg says otherwise).
func startPlugin(t *testing.T, kind sdk.Kind, name string, cfg map[string]any) *host.Plugin {
	t.Helper()
	ctx := context.Background()
	p, err := host.Start(ctx, host.Spec{Name: name, Kind: kind, Path: testPluginPath, Env: []string{"NG_TEST_KIND=" + string(kind)}},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	if cfg["mode"] == nil {
		cfg["mode"] = "ok"
	}
	js, _ := json.Marshal(cfg)
	if err := p.Configure(ctx, sdk.Config{JSON: js}); err != nil {
		t.Fatal(err)
	}
	return p
}

// traffic is one second of packet time from sec on: each of sources
// (10.1.x.y) sends perSecond UDP packets of 200 bytes to 10.9.0.1.
func traffic(sec int64, sources, perSecond int) *sdk.PacketBatch {
	n := sources * perSecond
	b := &sdk.PacketBatch{Timestamps: make([]int64, 0, n), SrcAddrs: make([]byte, 0, 16*n), DstAddrs: make([]byte, 0, 16*n),
		SrcPorts: make([]uint32, 0, n), DstPorts: make([]uint32, 0, n), Protocols: make([]byte, 0, n), Lengths: make([]uint32, 0, n),
		TCPFlags: make([]byte, 0, n), Flags: make([]byte, 0, n)}
	dst := netip.AddrFrom4([4]byte{10, 9, 0, 1}).As16()
	for k := range perSecond {
		ts := sec*int64(time.Second) + int64(k)*int64(time.Second)/int64(perSecond)
		for s := range sources {
			src := netip.AddrFrom4([4]byte{10, 1, byte(s >> 8), byte(s)}).As16()
			b.Timestamps = append(b.Timestamps, ts)
			b.SrcAddrs = append(b.SrcAddrs, src[:]...)
			b.DstAddrs = append(b.DstAddrs, dst[:]...)
			b.SrcPorts = append(b.SrcPorts, uint32(40000+s))
			b.DstPorts = append(b.DstPorts, 53)
			b.Protocols = append(b.Protocols, 17)
			b.Lengths = append(b.Lengths, 200)
			b.TCPFlags = append(b.TCPFlags, 0)
			b.Flags = append(b.Flags, 0)
		}
	}
	return b
}

// startRun runs p until cancel is called; wait returns Run's error.
func startRun(p *Pipeline, drainTimeout time.Duration) (cancel func(), wait func() error) {
	ctx, cancelRun := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, drainTimeout) }()
	<-p.started
	return cancelRun, func() error { return <-done }
}

// feed sends traffic for seconds [from, to) into the pipeline's packet
// queue and returns how many packets it took, stopping early when one
// batch waited more than stall (back-pressure).
func feed(p *Pipeline, from, to int64, sources, perSecond int, stall time.Duration) (packets int, stalled bool) {
	for sec := from; sec < to; sec++ {
		b := traffic(sec, sources, perSecond)
		select {
		case p.packets <- queuedBatch{b: b}:
			packets += b.Len()
		case <-time.After(stall):
			return packets, true
		}
	}
	return packets, false
}

// spooledRecords reads every unacknowledged batch of the spool in dir.
func spooledRecords(t *testing.T, dir string) (features map[time.Duration]int, alerts []sdk.Alert, rec spool.Recovery, bytes int64) {
	t.Helper()
	sp, rec, err := spool.Open(spool.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	_, bytes = sp.Pending()
	features = map[time.Duration]int{}
	r := sp.Reader(0)
	defer r.Close()
	for {
		raw, err := r.Next()
		if errors.Is(err, io.EOF) {
			return features, alerts, rec, bytes
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := sdk.UnmarshalRecords(raw.Payload)
		if err != nil {
			t.Fatalf("spooled batch %d: %v", raw.Seq, err)
		}
		if b.Features != nil {
			features[b.Features.Window] += len(b.Features.Rows)
		} else {
			alerts = append(alerts, b.Alerts...)
		}
	}
}

// windowsBySize is Stats' window counts keyed by size.
func windowsBySize(st Stats) map[time.Duration]int {
	out := map[time.Duration]int{}
	for _, size := range sdk.WindowSizes {
		if n := st.Windows[fmt.Sprintf("%ds", size/time.Second)]; n > 0 {
			out[size] = int(n)
		}
	}
	return out
}

// A sink that refuses everything keeps its spool full, so windows and
// alerts wait (back-pressure) when the stop begins; the drain times out
// with the aggregator's last windows and the detector's last alerts not
// yet spooled. They go past the spool's bound rather than be lost: after
// Run, the spool on disk holds exactly the windows and alerts the
// pipeline counted.
func TestDrainTimeoutKeepsWhatWasAcceptedInTheSpool(t *testing.T) {
	const (
		sources   = 200
		perSecond = 20 // 100 packets per 5 s window: the testplugin detector alerts on every row
		maxBytes  = 256 << 10
	)
	spoolDir := t.TempDir()
	det := startPlugin(t, sdk.KindDetector, "busy", map[string]any{})
	sink := startPlugin(t, sdk.KindSink, "down", map[string]any{"fail_first": 1_000_000_000, "out": filepath.Join(t.TempDir(), "stored.jsonl")})
	log := &syncbuf.Buffer{}
	p, err := New(Config{Sensor: "drain", Detectors: []*host.Plugin{det}, Sinks: []*host.Plugin{sink}, Window: window.Options{Sizes: sdk.WindowSizes},
		QueueDepth: 4, SpoolDir: spoolDir, SpoolMaxBytes: maxBytes, Log: slog.New(slog.NewTextHandler(log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	cancel, wait := startRun(p, 500*time.Millisecond)
	const first = 1_800_000_000 // seconds: a day's start, so 180 s windows align
	fed, stalled := feed(p, first, first+600, sources, perSecond, 2*time.Second)
	before := p.Stats()
	cancel()
	if err := wait(); err != nil {
		t.Fatalf("Run: %v\n%s", err, log)
	}
	st := p.Stats()
	ks := st.Sinks[0]
	features, alerts, rec, disk := spooledRecords(t, filepath.Join(spoolDir, "down"))
	t.Logf("fed %d packets (stalled: %v); at the stop %d windows and %d alerts counted, %d feature/alert batches had waited for room; after the drain %v windows, %d alerts counted",
		fed, stalled, sumWindows(before), before.Alerts, before.Sinks[0].SpoolFullWaits, st.Windows, st.Alerts)
	t.Logf("spool after Run: %v feature rows by size, %d alerts, %d bytes (bound %d); %d batches went past the bound, %d lost; recovery %s",
		features, len(alerts), disk, maxBytes, ks.SpooledPastBound, ks.LostBatches, rec)
	if !stalled || before.Sinks[0].SpoolFullWaits == 0 {
		t.Fatalf("the spool never held windows back (stalled %v, waits %d): the test proves nothing", stalled, before.Sinks[0].SpoolFullWaits)
	}
	if ks.SpooledPastBound == 0 || disk <= maxBytes {
		t.Errorf("nothing went past the bound (%d batches, %d bytes): the drain did not time out with windows waiting", ks.SpooledPastBound, disk)
	}
	if st.Packets != uint64(fed) {
		t.Errorf("the aggregator counted %d packets of the %d it was given", st.Packets, fed)
	}
	if want := windowsBySize(st); fmt.Sprint(features) != fmt.Sprint(want) {
		t.Errorf("spooled feature rows %v; the pipeline counted %v", features, want)
	}
	ids := map[string]bool{}
	for _, a := range alerts {
		ids[a.ID] = true
	}
	if uint64(len(alerts)) != st.Alerts || len(ids) != len(alerts) || st.Alerts == 0 {
		t.Errorf("spooled %d alerts (%d distinct ids); the pipeline counted %d", len(alerts), len(ids), st.Alerts)
	}
	if ks.LostBatches != 0 || !rec.Clean() {
		t.Errorf("lost %d batches; spool recovery %s", ks.LostBatches, rec)
	}
	if !strings.Contains(log.String(), "spooled_past_bound=") {
		t.Errorf("the drain does not report what went past the bound:\n%s", log)
	}
}

func sumWindows(st Stats) (n uint64) {
	for _, v := range st.Windows {
		n += v
	}
	return n
}

// A spool that fails every write (closed under the pipeline, as a disk
// that went away would fail) holds windows back: the producer retries,
// each failure counted and logged, and what still cannot be written at
// the drain timeout is counted as lost, logged, and Run's error.
func TestSpoolWriteFailuresAreCountedAndReported(t *testing.T) {
	spoolDir := t.TempDir()
	sink := startPlugin(t, sdk.KindSink, "broken", map[string]any{"out": filepath.Join(t.TempDir(), "stored.jsonl")})
	log := &syncbuf.Buffer{}
	p, err := New(Config{Sensor: "broken", Sinks: []*host.Plugin{sink}, Window: window.Options{Sizes: sdk.WindowSizes},
		QueueDepth: 4, SpoolDir: spoolDir, Log: slog.New(slog.NewTextHandler(log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	cancel, wait := startRun(p, time.Second)
	if err := p.spools["broken"].Close(); err != nil {
		t.Fatal(err)
	}
	const first = 1_800_000_000
	feed(p, first, first+12, 10, 10, 2*time.Second) // two 5 s windows close
	cancel()
	err = wait()
	ks := p.Stats().Sinks[0]
	t.Logf("write errors %d, batches lost %d; Run: %v", ks.SpoolWriteErrors, ks.LostBatches, err)
	if ks.SpoolWriteErrors == 0 || ks.LostBatches == 0 {
		t.Errorf("write errors %d, lost batches %d: want both counted", ks.SpoolWriteErrors, ks.LostBatches)
	}
	if err == nil || !strings.Contains(err.Error(), "are lost") {
		t.Errorf("Run returned %v; want an error naming the loss", err)
	}
	for _, want := range []string{`msg="sink spool write failed; features and alerts wait until it works" sink=broken`, `msg="a batch could not be queued for the sink and is lost" sink=broken kind=features`} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("the log lacks %s:\n%s", want, log)
		}
	}
}

// Stats is read by the API and the log while the aggregator works: it
// reads the counters the aggregator's goroutine publishes, never the
// aggregator itself (run with -race to check).
func TestStatsReadDuringARun(t *testing.T) {
	p, err := New(Config{Sensor: "stats", Window: window.Options{Sizes: sdk.WindowSizes}, QueueDepth: 4, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	cancel, wait := startRun(p, time.Second)
	stop := make(chan struct{})
	reads := make(chan int)
	var maxSources int
	go func() {
		n := 0
		defer func() { reads <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			st := p.Stats()
			maxSources = max(maxSources, st.Aggregator.ActiveSources)
			n++
		}
	}()
	const first = 1_800_000_000
	fed, _ := feed(p, first, first+40, 300, 5, time.Minute)
	close(stop)
	n := <-reads
	cancel()
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	t.Logf("%d Stats calls during a run of %d packets; up to %d active sources seen; at the end %d packets, windows %v", n, fed, maxSources, st.Packets, st.Windows)
	if st.Packets != uint64(fed) || st.Windows["5s"] == 0 || maxSources == 0 {
		t.Errorf("packets %d of %d, windows %v, active sources seen %d", st.Packets, fed, st.Windows, maxSources)
	}
}

// runAlerts runs the traffic of seconds [first, first+secs) through a
// pipeline with the testplugin detector and returns its alerts.
func runAlerts(t *testing.T, det *host.Plugin, first, secs int64) []sdk.Alert {
	t.Helper()
	var mu sync.Mutex
	var alerts []sdk.Alert
	p, err := New(Config{Sensor: "ids", Detectors: []*host.Plugin{det}, Window: window.Options{Sizes: sdk.WindowSizes},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), OnAlert: func(a sdk.Alert) {
			mu.Lock()
			defer mu.Unlock()
			alerts = append(alerts, a)
		}})
	if err != nil {
		t.Fatal(err)
	}
	cancel, wait := startRun(p, time.Minute)
	feed(p, first, first+secs, 20, 40, time.Minute)
	cancel() // the drain flushes the open windows and waits for the detector
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	return alerts
}

// The same input gives the same alerts, IDs and times included, however
// often it runs: an alert's ID is a hash of what it is about, and its
// time the aligned end of its window in packet time.
func TestAlertIdentityIsDeterministic(t *testing.T) {
	det := startPlugin(t, sdk.KindDetector, "busy", map[string]any{})
	const first = 1_800_000_000
	a := runAlerts(t, det, first, 23)
	b := runAlerts(t, det, first, 23)
	key := func(x sdk.Alert) string {
		return fmt.Sprintf("%s %s %v", x.ID, x.Time.UTC().Format(time.RFC3339Nano), x.End.UTC())
	}
	seen := map[string]int{}
	for _, x := range a {
		seen[key(x)]++
		if want := x.Start.Add(x.Window); !x.Time.Equal(want) {
			t.Errorf("alert %s: time %v, want its window's aligned end %v", x.ID, x.Time, want)
		}
	}
	for _, x := range b {
		seen[key(x)]--
	}
	partial := 0 // alerts on windows the stop closed before their end
	for _, x := range a {
		if x.End.After(time.Unix(first+23, 0)) {
			partial++
		}
	}
	t.Logf("two runs: %d and %d alerts (%d on windows the stop closed early); first id %s", len(a), len(b), partial, a[0].ID)
	if len(a) == 0 || len(a) != len(b) || partial == 0 {
		t.Fatalf("%d and %d alerts, %d partial: want the same, some on partial windows", len(a), len(b), partial)
	}
	for k, n := range seen {
		if n != 0 {
			t.Errorf("alert %s: %+d between the runs", k, n)
		}
	}
	ids := map[string]bool{}
	for _, x := range a {
		ids[x.ID] = true
	}
	if len(ids) != len(a) {
		t.Errorf("%d alerts share %d ids", len(a), len(ids))
	}
	// Each part of an alert's identity changes its ID.
	src, start := netip.MustParseAddr("10.1.0.1"), time.Unix(first, 0)
	base := alertID("s", "d", "l", src, 5*time.Second, start)
	for name, id := range map[string]string{
		"sensor":   alertID("s2", "d", "l", src, 5*time.Second, start),
		"detector": alertID("s", "d2", "l", src, 5*time.Second, start),
		"label":    alertID("s", "d", "l2", src, 5*time.Second, start),
		"source":   alertID("s", "d", "l", netip.MustParseAddr("10.1.0.2"), 5*time.Second, start),
		"window":   alertID("s", "d", "l", src, 30*time.Second, start),
		"start":    alertID("s", "d", "l", src, 5*time.Second, start.Add(5*time.Second)),
		"split":    alertID("sd", "", "l", src, 5*time.Second, start),
	} {
		if id == base {
			t.Errorf("changing the %s leaves the id %s", name, id)
		}
	}
	if again := alertID("s", "d", "l", src, 5*time.Second, start.In(time.FixedZone("x", 3600))); again != base {
		t.Errorf("the id depends on the time zone: %s, %s", again, base)
	}
}

// feedSplit hands traffic for seconds [from, to) to the pipeline as a
// capture does, raw packets to sinks first (with DropRawPackets: that
// never waits), in batches of size packets, and reports whether a batch
// waited more than stall for the aggregator.
func feedSplit(p *Pipeline, from, to int64, sources, perSecond, size int, stall time.Duration) (packets int, stalled bool) {
	ctx := context.Background()
	for sec := from; sec < to; sec++ {
		b := traffic(sec, sources, perSecond)
		for lo := 0; lo < b.Len(); lo += size {
			hi := min(b.Len(), lo+size)
			part := &sdk.PacketBatch{Timestamps: b.Timestamps[lo:hi], SrcAddrs: b.SrcAddrs[16*lo : 16*hi], DstAddrs: b.DstAddrs[16*lo : 16*hi],
				SrcPorts: b.SrcPorts[lo:hi], DstPorts: b.DstPorts[lo:hi], Protocols: b.Protocols[lo:hi], Lengths: b.Lengths[lo:hi],
				TCPFlags: b.TCPFlags[lo:hi], Flags: b.Flags[lo:hi]}
			if _, err := p.packetsToSinks(ctx, part); err != nil {
				panic(err) // dropping raw packets never waits nor fails
			}
			select {
			case p.packets <- queuedBatch{b: part}:
				packets += part.Len()
			case <-time.After(stall):
				return packets, true
			}
		}
	}
	return packets, false
}

// With a sink that acknowledges nothing, raw packets fill its spool only
// to the high-water mark and are dropped (counted) from then on; windows
// and alerts are spooled in the room left above it without waiting, where
// they would otherwise wait behind raw packets for good.
func TestRawPacketsLeaveRoomForWindowsAndAlerts(t *testing.T) {
	const maxBytes = 1 << 20
	spoolDir := t.TempDir()
	det := startPlugin(t, sdk.KindDetector, "busy", map[string]any{})
	sink := startPlugin(t, sdk.KindSink, "down", map[string]any{"raw_packets": true, "fail_first": 1_000_000_000, "out": filepath.Join(t.TempDir(), "stored.jsonl")})
	p, err := New(Config{Sensor: "room", Detectors: []*host.Plugin{det}, Sinks: []*host.Plugin{sink}, Window: window.Options{Sizes: sdk.WindowSizes},
		QueueDepth: 4, SpoolDir: spoolDir, SpoolMaxBytes: maxBytes, DropRawPackets: true, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	cancel, wait := startRun(p, 200*time.Millisecond)
	defer func() {
		cancel()
		_ = wait()
	}()
	const first = 1_800_000_000
	// 200 sources, 100 packets per 5 s window each: two 5 s windows close,
	// and the detector alerts on every row; raw batches of 100 packets.
	fed, stalled := feedSplit(p, first, first+11, 200, 20, 100, 5*time.Second)
	var st Stats
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		st = p.Stats()
		if (st.Windows["5s"] >= 402 && st.Alerts >= 400) || stalled || time.Now().After(deadline) {
			break
		}
	}
	ks := st.Sinks[0]
	t.Logf("fed %d packets (stalled: %v); raw packets dropped %d in %d batches; spool %d bytes (bound %d, high-water mark %d); windows %v, alerts %d; feature/alert batches that waited for room %d",
		fed, stalled, ks.RawPacketsDropped, ks.RawBatchesDropped, ks.Spool.DiskBytes, maxBytes, maxBytes*3/4, st.Windows, st.Alerts, ks.SpoolFullWaits)
	if stalled || ks.SpoolFullWaits != 0 {
		t.Fatalf("windows or alerts waited for room (stalled %v, %d waits) in a spool raw packets filled", stalled, ks.SpoolFullWaits)
	}
	if ks.RawPacketsDropped == 0 || ks.Spool.DiskBytes > maxBytes {
		t.Errorf("raw packets dropped %d, spool %d bytes: want drops, within the bound", ks.RawPacketsDropped, ks.Spool.DiskBytes)
	}
	if st.Windows["5s"] != 402 || st.Alerts != 400 {
		t.Errorf("windows %v, alerts %d: want two 5 s windows of 201 sources spooled, and 400 alerts", st.Windows, st.Alerts)
	}
}
