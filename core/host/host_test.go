package host

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netguardian/netguardian/internal/syncbuf"
	"github.com/netguardian/netguardian/sdk"
)

var testPluginPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ng-host-test")
	if err != nil {
		panic(err)
	}
	testPluginPath = filepath.Join(dir, "testplugin")
	out, err := exec.Command("go", "build", "-o", testPluginPath, "./testdata/testplugin").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build testplugin: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func quietLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func startTest(t *testing.T, kind sdk.Kind, cfg map[string]any) *Plugin {
	t.Helper()
	ctx := context.Background()
	p, err := Start(ctx, Spec{Name: "test-" + string(kind), Kind: kind, Path: testPluginPath, Env: []string{"NG_TEST_KIND=" + string(kind)}}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	p.backoff.Min = 10 * time.Millisecond
	t.Cleanup(p.Stop)
	if cfg == nil {
		cfg = map[string]any{}
	}
	if cfg["mode"] == nil {
		cfg["mode"] = "ok"
	}
	js, _ := json.Marshal(cfg)
	if err := p.Configure(ctx, sdk.Config{JSON: js}); err != nil {
		t.Fatal(err)
	}
	return p
}

func featureBatch(packets ...float64) *sdk.FeatureBatch {
	b := &sdk.FeatureBatch{Window: 5 * time.Second, Names: []string{sdk.FeaturePackets, sdk.FeatureBytes}}
	for i, n := range packets {
		b.Rows = append(b.Rows, sdk.FeatureRow{Src: netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), Start: time.Unix(100, 0), End: time.Unix(105, 0), Values: []float64{n, n * 60}})
	}
	return b
}

func TestDetectReturnsAlertsForFlaggedRows(t *testing.T) {
	p := startTest(t, sdk.KindDetector, nil)
	alerts, err := p.Detect(context.Background(), featureBatch(5, 150, 99, 1000), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(alerts) != 2 || alerts[0].Row != 1 || alerts[1].Row != 3 {
		t.Fatalf("alerts = %+v, want rows 1 and 3", alerts)
	}
	if alerts[0].Score != 0.15 || len(alerts[0].TopFeatures) != 1 || alerts[0].TopFeatures[0].Value != 150 {
		t.Fatalf("alert 0 = %+v", alerts[0])
	}
}

func TestDetectorMisbehaviourIsAnErrorAndCounted(t *testing.T) {
	cases := []struct{ mode, want string }{
		{"panic", "Detect panicked: detector bug"},
		{"hang", "did not answer within"},
		{"too_many", "returned 3 alerts for 2 rows"},
		{"bad_label", `label "made_up", which the detector did not declare`},
		{"bad_row", "names row 2 of a 2-row batch"},
		{"error", "model not loaded"},
	}
	for _, c := range cases {
		t.Run(c.mode, func(t *testing.T) {
			p := startTest(t, sdk.KindDetector, map[string]any{"mode": c.mode})
			timeout := 5 * time.Second // generous: a loaded CI machine must not turn errors into timeouts
			if c.mode == "hang" {
				timeout = 300 * time.Millisecond
			}
			_, err := p.Detect(context.Background(), featureBatch(1, 2), timeout)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
			h := p.Health()
			if h.Failures != 1 || h.Restarts != 0 || h.State != StateRunning {
				t.Fatalf("health = %+v, want 1 failure, no restart, running", h)
			}
			// The plugin survives its own bad answer and keeps serving.
			if conn, err := p.Conn(); err != nil || conn.Ping() != nil {
				t.Fatalf("plugin not alive after %s: %v", c.mode, err)
			}
		})
	}
}

// Watch asks the running plugin for its Stats: its own health and
// counters, and its process's Go runtime as the SDK reads it.
func TestWatchPollsPluginStats(t *testing.T) {
	for _, mode := range []string{"ok", "unhealthy"} {
		t.Run(mode, func(t *testing.T) {
			p := startTest(t, sdk.KindDetector, map[string]any{"mode": mode})
			if p.Health().Reported != nil {
				t.Fatal("a report before Watch asked")
			}
			if _, err := p.Detect(context.Background(), featureBatch(1), 5*time.Second); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go p.Watch(ctx, 20*time.Millisecond)
			var r *sdk.Stats
			for deadline := time.Now().Add(10 * time.Second); r == nil && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				r = p.Health().Reported
			}
			if r == nil {
				t.Fatal("no report within 10 s")
			}
			if r.Healthy != (mode == "ok") || r.Counters["calls"] != 1 {
				t.Fatalf("report %+v", r)
			}
			if mode == "unhealthy" && r.Message != "told to be unhealthy" {
				t.Fatalf("message %q", r.Message)
			}
			// A Go process serving gRPC has goroutines and megabytes from
			// the OS; its live heap is known once a GC cycle has run.
			if r.Process.Goroutines < 2 || r.Process.RuntimeBytes < 1<<20 || (r.Process.GCCycles > 0) != (r.Process.HeapLiveBytes > 0) {
				t.Fatalf("process figures %+v", r.Process)
			}
		})
	}
}

// A plugin's own log lines reach the sensor's log labelled once with its
// block name.
func TestPluginLogLinesNameThePluginOnce(t *testing.T) {
	var buf syncbuf.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	p, err := Start(context.Background(), Spec{Name: "chatty", Kind: sdk.KindDetector, Path: testPluginPath, Env: []string{"NG_TEST_KIND=detector"}}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	if err := p.Configure(context.Background(), sdk.Config{JSON: []byte(`{"mode":"ok"}`)}); err != nil {
		t.Fatal(err)
	}
	var line string
	for deadline := time.Now().Add(5 * time.Second); line == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, l := range strings.Split(buf.String(), "\n") {
			if strings.Contains(l, "msg=configured") {
				line = l
			}
		}
	}
	if line == "" {
		t.Fatalf("the plugin's log line did not arrive:\n%s", buf.String())
	}
	if n := strings.Count(line, "plugin=chatty"); n != 1 || !strings.Contains(line, "mode=ok") {
		t.Fatalf("plugin=chatty %d times in %q, want once", n, line)
	}
}

func TestDetectorCrashIsRestartedAndBatchResent(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "crashed")
	p := startTest(t, sdk.KindDetector, map[string]any{"crash_on_call": 1, "marker": marker})
	alerts, err := p.Detect(context.Background(), featureBatch(500), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatal("the plugin never crashed; the test proves nothing")
	}
	if len(alerts) != 1 || p.Restarts() != 1 {
		t.Fatalf("alerts=%d restarts=%d, want 1 and 1", len(alerts), p.Restarts())
	}
}

func readSeqs(t *testing.T, path string) map[uint64]int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[uint64]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var line struct{ Seq uint64 }
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatal(err)
		}
		seen[line.Seq]++
	}
	return seen
}

func runSink(t *testing.T, p *Plugin, n int) *SinkWriter {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := p.NewSinkWriter(4, 2)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	for i := 0; i < n; i++ {
		if err := w.Write(ctx, sdk.Records{Features: featureBatch(float64(i))}); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return w
}

func TestSinkCrashResendsUnacknowledged(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	p := startTest(t, sdk.KindSink, map[string]any{"crash_on_call": 4, "marker": filepath.Join(dir, "crashed"), "out": out})
	w := runSink(t, p, 20)
	seen := readSeqs(t, out)
	for s := uint64(1); s <= 20; s++ {
		if seen[s] == 0 {
			t.Errorf("batch %d never stored", s)
		}
	}
	if p.Restarts() != 1 || w.Acked() != 20 || len(w.Unacked()) != 0 {
		t.Fatalf("restarts=%d acked=%d unacked=%d", p.Restarts(), w.Acked(), len(w.Unacked()))
	}
}

func TestSinkRejectedBatchesAreRetried(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out.jsonl")
	p := startTest(t, sdk.KindSink, map[string]any{"fail_first": 2, "out": out})
	w := runSink(t, p, 5)
	seen := readSeqs(t, out)
	if len(seen) != 5 {
		t.Fatalf("stored %v, want 5 distinct batches", seen)
	}
	if w.Rejected() < 1 || p.Restarts() != 0 {
		t.Fatalf("rejected=%d restarts=%d; want the rejection counted and no restart", w.Rejected(), p.Restarts())
	}
}

func TestCircuitBreakerMarksPluginFailed(t *testing.T) {
	p := startTest(t, sdk.KindDetector, nil)
	p.backoff = Backoff{Min: time.Millisecond, Max: time.Millisecond, MaxCrashes: 2, Window: time.Minute}
	for i := 0; i < 3; i++ {
		conn, err := p.Conn()
		if err != nil {
			t.Fatal(err)
		}
		conn.Kill()
		err = p.Restart(context.Background(), conn, errors.New("killed by test"))
		if i < 2 && err != nil {
			t.Fatalf("restart %d: %v", i, err)
		}
		if i == 2 && !errors.Is(err, ErrFailed) {
			t.Fatalf("third crash: err = %v, want ErrFailed", err)
		}
	}
	if h := p.Health(); h.State != StateFailed || h.Restarts != 2 {
		t.Fatalf("health = %+v", h)
	}
}

func TestResolveAndVerify(t *testing.T) {
	dir := t.TempDir()
	if _, err := Resolve("nope", dir); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "make build") {
		t.Fatalf("missing plugin: %v", err)
	}
	plain := filepath.Join(dir, "plain")
	os.WriteFile(plain, []byte("x"), 0o644)
	if _, err := Resolve(plain, dir); err == nil || !strings.Contains(err.Error(), "not executable") {
		t.Fatalf("non-executable: %v", err)
	}
	sum, err := Hash(testPluginPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(testPluginPath, sum); err != nil {
		t.Fatal(err)
	}
	wrong := strings.Repeat("0", 64)
	err = Verify(testPluginPath, wrong)
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), sum) {
		t.Fatalf("mismatch: %v", err)
	}
	_, err = Start(context.Background(), Spec{Name: "pinned", Kind: sdk.KindDetector, Path: testPluginPath, SHA256: wrong, Env: []string{"NG_TEST_KIND=detector"}}, quietLog())
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("start with wrong pin: %v", err)
	}
}

func TestWrongKindIsRefused(t *testing.T) {
	_, err := Start(context.Background(), Spec{Name: "x", Kind: sdk.KindCapture, Path: testPluginPath, Env: []string{"NG_TEST_KIND=detector"}}, quietLog())
	if err == nil || !strings.Contains(err.Error(), "is a detector plugin, not a capture") {
		t.Fatalf("err = %v", err)
	}
}

func TestNonPluginBinaryIsRefused(t *testing.T) {
	_, err := Start(context.Background(), Spec{Name: "x", Kind: sdk.KindCapture, Path: "/bin/true"}, quietLog())
	if err == nil || !strings.Contains(err.Error(), "not a NetGuardian plugin") {
		t.Fatalf("err = %v, want a clear refusal", err)
	}
}
