package api

import (
	"strings"
	"testing"

	"github.com/netguardian/netguardian/core/host"
	"github.com/netguardian/netguardian/core/pipeline"
	"github.com/netguardian/netguardian/sdk"
)

func TestMetrics(t *testing.T) {
	f := newFixture(t, nil)
	f.stats.perCall.Store(0)
	f.stats.packets.Store(1234)
	f.stats.bytes.Store(56789)
	f.stats.set(func(st *pipeline.Stats) {
		st.Sinks[0].RawPacketsDropped = 7
		st.Sinks[0].Latency = pipeline.Histogram{Buckets: []float64{0.01, 0.1}, Counts: []uint64{3, 4}, Count: 4, Sum: 0.2}
		st.Aggregator.PacketsDropped = 5
		st.Captures = map[string]sdk.CaptureCounters{"replay": {KernelDrops: 11, DecodeErrors: 2}}
		st.Plugins[0].State = host.StateRestarting
	})
	f.srv.PublishAlert(fixtureAlert(1))
	code, h, body := f.get(t, "/metrics")
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		t.Fatalf("status %d, %s", code, h.Get("Content-Type"))
	}
	text := string(body)
	for _, want := range []string{
		"netguardian_packets_total 1234\n",
		"netguardian_bytes_total 56789\n",
		"netguardian_alerts_total 30\n",
		`netguardian_windows_total{window="5s"} 48` + "\n",
		`netguardian_windows_total{window="180s"} 1` + "\n",
		`netguardian_dropped_packets_total{name="pg",stage="sink"} 7` + "\n",
		`netguardian_dropped_packets_total{name="",stage="aggregator"} 5` + "\n",
		`netguardian_dropped_packets_total{name="replay",stage="kernel"} 11` + "\n",
		`netguardian_capture_decode_errors_total{capture="replay"} 2` + "\n",
		`netguardian_plugin_restarts_total{kind="detector",plugin="xgb"} 2` + "\n",
		`netguardian_plugin_up{kind="capture",plugin="replay",state="restarting"} 0` + "\n",
		`netguardian_plugin_up{kind="sink",plugin="pg",state="running"} 1` + "\n",
		`netguardian_queue_depth{name="",stage="packets"} 3` + "\n",
		`netguardian_queue_depth{name="xgb",stage="detector"} 4` + "\n",
		`netguardian_queue_depth{name="pg",stage="sink"} 2` + "\n",
		`netguardian_detector_latency_seconds_bucket{detector="xgb",le="0.001"} 1` + "\n",
		`netguardian_detector_latency_seconds_bucket{detector="xgb",le="0.01"} 10` + "\n",
		`netguardian_detector_latency_seconds_bucket{detector="xgb",le="+Inf"} 10` + "\n",
		`netguardian_detector_latency_seconds_sum{detector="xgb"} 0.05` + "\n",
		`netguardian_detector_latency_seconds_count{detector="xgb"} 10` + "\n",
		`netguardian_sink_latency_seconds_bucket{sink="pg",le="0.01"} 3` + "\n",
		`netguardian_sink_latency_seconds_count{sink="pg"} 4` + "\n",
		`netguardian_sink_acked_batches_total{sink="pg"} 20` + "\n",
		"netguardian_active_alerts 1\n",
		"netguardian_websocket_clients 0\n",
		"# TYPE netguardian_detector_latency_seconds histogram\n",
		"# TYPE netguardian_packets_total counter\n",
		"go_goroutines ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if t.Failed() {
		t.Log(text)
	}
}

// A histogram whose buckets and counts disagree is skipped, not a failed scrape.
func TestMetricsBadHistogram(t *testing.T) {
	f := newFixture(t, nil)
	f.stats.set(func(st *pipeline.Stats) { st.Detectors[0].Latency.Counts = []uint64{1} })
	code, _, body := f.get(t, "/metrics")
	if code != 200 || strings.Contains(string(body), "netguardian_detector_latency_seconds_bucket") || !strings.Contains(string(body), "netguardian_packets_total") {
		t.Fatalf("status %d", code)
	}
}
