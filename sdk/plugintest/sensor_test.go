package plugintest_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netguardian/netguardian/core/host"
	"github.com/netguardian/netguardian/core/pipeline"
	"github.com/netguardian/netguardian/core/window"
	"github.com/netguardian/netguardian/sdk"
	"github.com/netguardian/netguardian/sdk/plugintest"
)

// countingRecorder is the pipeline's recorder: it counts what it is given.
type countingRecorder struct {
	mu      sync.Mutex
	windows map[time.Duration]int
	alerts  int
}

func (r *countingRecorder) AppendFeatures(_ context.Context, b *sdk.FeatureBatch) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.windows[b.Window] += len(b.Rows)
	return nil
}

func (r *countingRecorder) AppendAlerts(_ context.Context, a []sdk.Alert) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.alerts += len(a)
	return nil
}

func newPipeline(t *testing.T, rec *countingRecorder, captures, detectors []*host.Plugin) (*pipeline.Pipeline, error) {
	t.Helper()
	return pipeline.New(pipeline.Config{
		Sensor: "plugintest", Captures: captures, Detectors: detectors,
		Window:   window.Options{Sizes: sdk.WindowSizes, Lateness: 2 * time.Second},
		Recorder: rec, DetectTimeout: 5 * time.Second, Log: quiet(),
	})
}

// A detector that panics on every batch costs the sensor nothing but
// counted failures: the replay completes, every window is produced and
// recorded, and the detector is neither restarted nor given up on.
func TestSensorKeepsRunningWithAPanickingDetector(t *testing.T) {
	t.Parallel()
	sample, err := filepath.Abs("../../examples/pcaps/sample.pcap")
	if err != nil {
		t.Fatal(err)
	}
	capture := plugintest.Start(t, capturePcap, sdk.KindCapture, map[string]any{"files": []string{sample}, "speed": 0})
	det := plugintest.Start(t, testPlugin, sdk.KindDetector, map[string]any{"mode": "panic"})
	rec := &countingRecorder{windows: map[time.Duration]int{}}
	pl, err := newPipeline(t, rec, []*host.Plugin{capture}, []*host.Plugin{det})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := pl.Run(ctx, 10*time.Second); err != nil {
		t.Fatalf("the pipeline failed: %v", err)
	}
	st := pl.Stats()
	if st.Packets == 0 || rec.windows[5*time.Second] == 0 || uint64(rec.windows[5*time.Second]) != st.Windows["5s"] || rec.windows[30*time.Second] == 0 {
		t.Fatalf("packets %d, 5s windows recorded %d (counted %d), 30s windows recorded %d: want the whole replay in windows",
			st.Packets, rec.windows[5*time.Second], st.Windows["5s"], rec.windows[30*time.Second])
	}
	d := st.Detectors[0]
	if d.Calls == 0 || d.Failures != d.Calls || d.Alerts != 0 || rec.alerts != 0 {
		t.Fatalf("detector stats %+v, %d alerts recorded; want every call failed and counted", d, rec.alerts)
	}
	h := det.Health()
	if h.State != host.StateRunning || h.Restarts != 0 || h.Failures != d.Failures || !strings.Contains(h.LastError, "Detect panicked: detector bug") {
		t.Fatalf("detector health %+v", h)
	}
}

// The pipeline refuses a detector asking for a feature that does not
// exist, naming it, as plugintest does at Describe.
func TestPipelineRefusesUnknownFeature(t *testing.T) {
	t.Parallel()
	p, err := host.Start(context.Background(), host.Spec{Name: "bad", Kind: sdk.KindDetector, Path: badPlugin, Env: []string{"NG_BAD_MODE=unknownfeature"}}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	_, err = newPipeline(t, &countingRecorder{}, nil, []*host.Plugin{p})
	if err == nil || !strings.Contains(err.Error(), `detector "bad" asks for unknown feature "made_up_total"`) {
		t.Fatalf("err = %v", err)
	}
}
