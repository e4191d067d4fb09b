package plugintest_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netguardian/netguardian/core/host"
	"github.com/netguardian/netguardian/sdk"
	"github.com/netguardian/netguardian/sdk/plugintest"
)

// The binaries the tests run, built once by TestMain: the host's
// misbehaving testplugin, this package's badplugin, and capture-pcap.
var testPlugin, badPlugin, capturePcap string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ng-plugintest")
	if err != nil {
		panic(err)
	}
	testPlugin = filepath.Join(dir, "testplugin")
	badPlugin = filepath.Join(dir, "badplugin")
	capturePcap = filepath.Join(dir, "capture-pcap")
	builds := [][2]string{
		{testPlugin, "../../core/host/testdata/testplugin"},
		{badPlugin, "./testdata/badplugin"},
		{capturePcap, "../../plugins/capture-pcap"},
	}
	var wg sync.WaitGroup
	errs := make([]error, len(builds))
	for i, b := range builds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, err := exec.Command("go", "build", "-o", b[0], b[1]).CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("build %s: %v\n%s", b[1], err, out)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// recorder is a plugintest.TB that records instead of failing, so the
// tests can check what the harness reports. Fatalf ends the goroutine, as
// testing.T's does.
type recorder struct {
	parent   *testing.T
	mu       sync.Mutex
	errors   []string
	logs     []string
	fatal    bool
	cleanups []func()
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	r.mu.Lock()
	r.fatal = true
	r.mu.Unlock()
	runtime.Goexit()
}
func (r *recorder) Logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}
func (r *recorder) Cleanup(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups = append(r.cleanups, f)
}
func (r *recorder) TempDir() string { return r.parent.TempDir() }
func (r *recorder) Name() string    { return r.parent.Name() }

// record runs fn with a recorder and then its cleanups, last first.
func record(t *testing.T, fn func(tb plugintest.TB)) *recorder {
	t.Helper()
	r := &recorder{parent: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(r)
	}()
	<-done
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
	return r
}

func (r *recorder) all() string { return strings.Join(r.errors, "\n") }

// wantReported fails t unless the harness reported an error containing
// every one of wants.
func (r *recorder) wantReported(t *testing.T, wants ...string) {
	t.Helper()
	if len(r.errors) == 0 {
		t.Fatalf("the harness reported nothing; want %q", wants)
	}
	for _, w := range wants {
		if !strings.Contains(r.all(), w) {
			t.Errorf("the harness's report lacks %q:\n%s", w, r.all())
		}
	}
}

func TestRunDetectorPassesAWellBehavedDetector(t *testing.T) {
	t.Parallel()
	busy := plugintest.Batch(5*time.Second,
		map[string]float64{sdk.FeaturePackets: 5},
		map[string]float64{sdk.FeaturePackets: 150},
	)
	checked := false
	res := plugintest.RunDetector(t, testPlugin, plugintest.DetectorSuite{
		GoodConfig: map[string]any{"mode": "ok"},
		Fixtures: []plugintest.Fixture{{Name: "one busy source", Batch: busy, Check: func(t plugintest.TB, alerts []sdk.Alert) {
			checked = true
			if len(alerts) != 1 || alerts[0].Src != busy.Rows[1].Src || alerts[0].Window != 5*time.Second || alerts[0].Label != "suspicious" {
				t.Errorf("alerts = %+v, want one for %s", alerts, busy.Rows[1].Src)
			}
		}}},
	})
	if !checked {
		t.Fatal("the fixture's Check was not called")
	}
	if res.Info.Name != "testplugin" || len(res.Fixtures) < 8 {
		t.Fatalf("result: info %+v, %d fixtures", res.Info, len(res.Fixtures))
	}
	if got := len(res.Alerts["10000 rows"]); got == 0 || got > 10000 {
		t.Fatalf("10000-row fixture gave %d alerts", got)
	}
	if _, ok := res.Alerts["empty"]; !ok {
		t.Fatal("no result for the empty fixture")
	}
	plugintest.Golden(t, "testplugin-busy", res.Alerts["one busy source"])
}

func TestRunDetectorAcceptsProperConfigRefusals(t *testing.T) {
	t.Parallel()
	r := record(t, func(tb plugintest.TB) {
		plugintest.RunDetector(tb, badPlugin, plugintest.DetectorSuite{
			GoodConfig: map[string]any{"threshold": 50},
			BadConfigs: []map[string]any{
				{"threshold": -1},     // refused by the plugin
				{"threshold": "lots"}, // refused by the core: not a number
				{"treshold": 5},       // refused by the core: no such attribute
			},
			Env:       []string{"NG_BAD_MODE=ok"},
			LargeRows: 100,
		})
	})
	if len(r.errors) != 0 || r.fatal {
		t.Fatalf("a correct detector was reported:\n%s", r.all())
	}
	logs := strings.Join(r.logs, "\n")
	for _, want := range []string{"threshold -1: must be 0 or more", `a number is required`, `Did you mean "threshold"?`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
}

// The harness reports each way a detector can misbehave on a batch, names
// the fixture, and goes on with the next fixture.
func TestRunDetectorReportsMisbehavingDetectors(t *testing.T) {
	cases := []struct {
		mode  string
		cfg   map[string]any
		wants []string
	}{
		{"panic", nil, []string{`fixture "empty"`, "Detect panicked: detector bug"}},
		{"hang", nil, []string{`fixture "10000 rows"`, "did not answer within 300ms"}},
		{"too_many", nil, []string{`fixture "empty"`, "returned 1 alerts for 0 rows", "returned 2 alerts for 1 rows"}},
		{"bad_label", nil, []string{`label "made_up", which the detector did not declare`}},
		{"bad_row", nil, []string{"names row 1 of a 1-row batch"}},
		{"error", nil, []string{"model not loaded"}},
		{"crash", map[string]any{"mode": "ok", "crash_on_call": 2}, []string{`fixture "one row, 5s window"`, "died and was restarted 1 time(s)"}},
	}
	for _, c := range cases {
		t.Run(c.mode, func(t *testing.T) {
			t.Parallel()
			cfg := c.cfg
			if cfg == nil {
				cfg = map[string]any{"mode": c.mode}
			}
			if cfg["crash_on_call"] != nil {
				cfg["marker"] = filepath.Join(t.TempDir(), "crashed")
			}
			r := record(t, func(tb plugintest.TB) {
				plugintest.RunDetector(tb, testPlugin, plugintest.DetectorSuite{GoodConfig: cfg, Deadline: 300 * time.Millisecond})
			})
			if r.fatal {
				t.Fatalf("the harness stopped instead of going through the fixtures:\n%s", r.all())
			}
			r.wantReported(t, c.wants...)
		})
	}
}

func TestRunDetectorReportsBadConfigHandling(t *testing.T) {
	cases := []struct {
		name, path string
		env        []string
		bad        map[string]any
		want       string
	}{
		{"accepted", testPlugin, nil, map[string]any{"mode": "nonsense"}, "Configure accepted it"},
		{"panic", badPlugin, []string{"NG_BAD_MODE=configpanic"}, map[string]any{"threshold": -1}, "Configure panicked instead of returning an error"},
		{"empty message", badPlugin, []string{"NG_BAD_MODE=configsilent"}, map[string]any{"threshold": -1}, "refused it with an empty message"},
		{"exit", badPlugin, []string{"NG_BAD_MODE=configexit"}, map[string]any{"threshold": -1}, "the plugin exited"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			good := map[string]any{"mode": "ok"}
			if c.path == badPlugin {
				good = nil
			}
			r := record(t, func(tb plugintest.TB) {
				plugintest.RunDetector(tb, c.path, plugintest.DetectorSuite{GoodConfig: good, BadConfigs: []map[string]any{c.bad}, Env: c.env, LargeRows: 10})
			})
			r.wantReported(t, "bad config 0", c.want)
		})
	}
}

func TestProtocolVersionMismatchIsRefused(t *testing.T) {
	t.Parallel()
	_, err := host.Start(context.Background(), host.Spec{Name: "v2", Kind: sdk.KindDetector, Path: badPlugin, Env: []string{"NG_BAD_MODE=protov2"}}, nil)
	if err == nil {
		t.Fatal("a plugin speaking protocol 2 was started")
	}
	for _, want := range []string{"protocol", "plugin speaks protocol version 2", fmt.Sprintf("this core supports %d", sdk.ProtocolVersion)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	r := record(t, func(tb plugintest.TB) {
		plugintest.RunDetector(tb, badPlugin, plugintest.DetectorSuite{Env: []string{"NG_BAD_MODE=protov2"}})
	})
	if !r.fatal {
		t.Fatal("the harness went on with a plugin that did not start")
	}
	r.wantReported(t, "did not start", "plugin speaks protocol version 2")
}

func TestNewerFeatureSchemaIsRefused(t *testing.T) {
	t.Parallel()
	_, err := host.Start(context.Background(), host.Spec{Name: "future", Kind: sdk.KindDetector, Path: badPlugin, Env: []string{"NG_BAD_MODE=newschema"}}, nil)
	want := fmt.Sprintf("built for feature schema version %d, but this core knows version %d", sdk.FeatureSchemaVersion+1, sdk.FeatureSchemaVersion)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want it to contain %q", err, want)
	}
	r := record(t, func(tb plugintest.TB) {
		plugintest.RunDetector(tb, badPlugin, plugintest.DetectorSuite{Env: []string{"NG_BAD_MODE=newschema"}})
	})
	r.wantReported(t, want)
}

func TestUnknownFeatureIsReportedAtDescribe(t *testing.T) {
	t.Parallel()
	r := record(t, func(tb plugintest.TB) {
		plugintest.RunDetector(tb, badPlugin, plugintest.DetectorSuite{Env: []string{"NG_BAD_MODE=unknownfeature"}})
	})
	if !r.fatal {
		t.Fatal("the harness ran fixtures for a detector the core refuses")
	}
	r.wantReported(t, `Describe asks for unknown feature "made_up_total"`, sdk.FeatureInICMPUnreach)
}

func TestBadDescribeIsReported(t *testing.T) {
	t.Parallel()
	r := record(t, func(tb plugintest.TB) {
		plugintest.RunDetector(tb, badPlugin, plugintest.DetectorSuite{Env: []string{"NG_BAD_MODE=baddescribe"}})
	})
	r.wantReported(t, `"level" has unknown type "integer"`, "subscribes to 7s windows", "declares no labels")
}

func TestNaNScoreIsReported(t *testing.T) {
	t.Parallel()
	r := record(t, func(tb plugintest.TB) {
		plugintest.RunDetector(tb, badPlugin, plugintest.DetectorSuite{Env: []string{"NG_BAD_MODE=nanscore"}, LargeRows: 10})
	})
	r.wantReported(t, `fixture "NaN values"`, "has a NaN score")
}

func TestBuild(t *testing.T) {
	t.Parallel()
	// A main package of its own module, which Build builds in that module.
	dir := filepath.Join(t.TempDir(), "tiny")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/tiny\n\ngo 1.22\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() { println(\"tiny\") }\n"), 0o644)
	bin := plugintest.Build(t, dir)
	if st, err := os.Stat(bin); err != nil || st.Mode()&0o111 == 0 || filepath.Base(bin) != "tiny" {
		t.Fatalf("Build returned %s (%v)", bin, err)
	}
	if out, err := exec.Command(bin).CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "tiny" {
		t.Fatalf("the built binary: %v %q", err, out)
	}
	cases := []struct{ dir, want string }{
		{"testdata/nonexistent", "no such file or directory"},
		{"doc.go", "is not a directory"},
		{".", "made no executable"}, // plugintest itself is not a main package
	}
	for _, c := range cases {
		r := record(t, func(tb plugintest.TB) { plugintest.Build(tb, c.dir) })
		if !r.fatal {
			t.Errorf("Build(%q) did not stop the test", c.dir)
		}
		r.wantReported(t, c.want)
	}
}

func TestStartRefusesWrongKind(t *testing.T) {
	t.Parallel()
	r := record(t, func(tb plugintest.TB) {
		plugintest.Start(tb, badPlugin, sdk.KindSink, nil, "NG_BAD_MODE=ok")
	})
	r.wantReported(t, "is a detector plugin, not a sink")
}

func TestDetectorDetectProjectsAndFills(t *testing.T) {
	t.Parallel()
	d := plugintest.StartDetector(t, badPlugin, map[string]any{"threshold": 10}, "NG_BAD_MODE=ok")
	b := plugintest.Batch(30*time.Second, map[string]float64{sdk.FeaturePackets: 3}, map[string]float64{sdk.FeaturePackets: 30, sdk.FeatureBytes: 1})
	alerts := d.Detect(b)
	if len(alerts) != 1 {
		t.Fatalf("alerts = %+v, want 1", alerts)
	}
	a := alerts[0]
	if a.Row != 1 || a.Src != b.Rows[1].Src || a.Window != 30*time.Second || !a.Start.Equal(plugintest.FixtureStart) ||
		!a.End.Equal(plugintest.FixtureStart.Add(30*time.Second)) || a.Detector != "badplugin" || a.Severity != sdk.SeverityMedium {
		t.Fatalf("alert = %+v, want the core fields filled from row 1", a)
	}
	lacking := &sdk.FeatureBatch{Window: 30 * time.Second, Names: []string{sdk.FeatureBytes}, Rows: []sdk.FeatureRow{{Values: []float64{1}}}}
	if _, err := d.TryDetect(lacking); err == nil || !strings.Contains(err.Error(), `no feature "packets_total"`) {
		t.Fatalf("a batch without the detector's feature: err = %v", err)
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
