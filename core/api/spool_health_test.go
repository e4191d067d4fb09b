package api

import (
	"strings"
	"testing"

	"github.com/netguardian/netguardian/core/pipeline"
	"github.com/netguardian/netguardian/core/spool"
)

// A sink whose spool fails to write, or that lost feature or alert
// batches, makes the sensor degraded with a reason naming it, and its
// counters are in /api/health and /metrics.
func TestSpoolFailuresShowInHealthAndMetrics(t *testing.T) {
	f := newFixture(t, nil)
	f.stats.set(func(st *pipeline.Stats) {
		st.Sinks[0].Spool = &spool.Stats{PendingRecords: 5, DiskBytes: 4096, MaxBytes: 1 << 20}
		st.Sinks[0].SpoolFullWaits = 2
		st.Sinks[0].SpoolWriteErrors = 3
		st.Sinks[0].LostBatches = 1
	})
	var h healthView
	f.getJSON(t, "/api/health", 200, &h)
	t.Logf("status %s, reasons %q, spools %+v", h.Status, h.Reasons, h.Spools)
	sp := h.Spools["pg"]
	if h.Status != statusDegraded || sp.FullWaits != 2 || sp.WriteErrors != 3 {
		t.Errorf("status %s, spool %+v: want degraded, 2 waits and 3 write errors", h.Status, sp)
	}
	for _, want := range []string{`sink "pg" failed to write its spool 3 times`, `sink "pg" lost 1 feature or alert batches`} {
		if !strings.Contains(strings.Join(h.Reasons, "\n"), want) {
			t.Errorf("reasons %q lack %q", h.Reasons, want)
		}
	}
	_, _, body := f.get(t, "/metrics")
	for _, want := range []string{
		`netguardian_sink_spool_full_waits_total{sink="pg"} 2` + "\n",
		`netguardian_sink_spool_write_errors_total{sink="pg"} 3` + "\n",
		`netguardian_sink_lost_batches_total{sink="pg"} 1` + "\n",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
