package pipeline

import (
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netguardian/netguardian/core/host"
	"github.com/netguardian/netguardian/core/spool"
	"github.com/netguardian/netguardian/sdk"
)

type counters struct {
	packets, bytes, batches, alerts atomic.Uint64
	captureLost                     atomic.Uint64
	win5, win30, win180, winOther   atomic.Uint64
	captureCounters                 sync.Map // capture name -> sdk.CaptureCounters
}

func (c *counters) windows(size time.Duration) *atomic.Uint64 {
	switch size {
	case 5 * time.Second:
		return &c.win5
	case 30 * time.Second:
		return &c.win30
	case 180 * time.Second:
		return &c.win180
	}
	return &c.winOther
}

// Stats is a snapshot of the pipeline's counters.
type Stats struct {
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
	Batches uint64 `json:"batches"`
	Alerts  uint64 `json:"alerts"`
	// Windows closed per size ("5s", "30s", "180s").
	Windows map[string]uint64 `json:"windows"`
	// CaptureLost counts packets a live capture could not deliver while restarting.
	CaptureLost uint64                         `json:"capture_lost"`
	Captures    map[string]sdk.CaptureCounters `json:"captures"`
	Aggregator  AggregatorStats                `json:"aggregator"`
	Detectors   []DetectorStats                `json:"detectors"`
	Sinks       []SinkStats                    `json:"sinks"`
	Plugins     []host.Health                  `json:"plugins"`
	// Queue depths, in batches.
	PacketQueue int `json:"packet_queue"`
	// Reload is set by `netguardian run`, which reloads its config on SIGHUP.
	Reload *ReloadStats `json:"reload,omitempty"`
}

// ReloadStats count the config reloads (SIGHUP) of `netguardian run`.
type ReloadStats struct {
	Succeeded uint64 `json:"succeeded"`
	Failed    uint64 `json:"failed"` // rejected: the running config was kept
	// Last is when the last reload was tried (nil: never); LastOK whether
	// it was applied. Why one failed is in the log, not here.
	Last   *time.Time `json:"last,omitempty"`
	LastOK bool       `json:"last_ok"`
	// PendingRestart names the changed core settings that wait for a
	// restart of netguardian.
	PendingRestart []string `json:"pending_restart,omitempty"`
}

// AggregatorStats are the window stage's counters.
type AggregatorStats struct {
	ActiveSources  int    `json:"active_sources"`
	SourcesDropped uint64 `json:"sources_dropped"`
	PacketsDropped uint64 `json:"packets_dropped"`
	LatePackets    uint64 `json:"late_packets"`
}

// DetectorStats are one detector stage's counters.
type DetectorStats struct {
	Name     string `json:"name"`
	Calls    uint64 `json:"calls"`
	Alerts   uint64 `json:"alerts"`
	Failures uint64 `json:"failures"`
	Queue    int    `json:"queue"`
	// Latency of Detect calls: buckets are upper bounds in seconds.
	Latency Histogram `json:"latency"`
	// CloseToAlert runs from windows closing to their alerts being
	// recorded and published, for batches that raised alerts.
	CloseToAlert Histogram `json:"close_to_alert"`
}

// SinkStats are one sink stage's counters.
type SinkStats struct {
	Name              string `json:"name"`
	Acked             uint64 `json:"acked_batches"`
	Rejected          uint64 `json:"rejected_batches"`
	Queue             int    `json:"queue"`
	RawBatchesDropped uint64 `json:"raw_batches_dropped"`
	RawPacketsDropped uint64 `json:"raw_packets_dropped"`
	// Spool is the sink's disk queue (nil when batches queue in memory):
	// its size, and the batches found damaged and lost.
	Spool *spool.Stats `json:"spool,omitempty"`
	// SpoolFullWaits counts feature and alert batches that found the
	// spool full and waited for room (back-pressure on the windows).
	SpoolFullWaits uint64 `json:"spool_full_waits"`
	// SpoolWriteErrors counts spool writes that failed (disk errors):
	// features and alerts wait and retry, raw packets are dropped.
	SpoolWriteErrors uint64 `json:"spool_write_errors"`
	// SpooledPastBound counts batches a drain that timed out put in a
	// full spool past its bound rather than lose them.
	SpooledPastBound uint64 `json:"spooled_past_bound"`
	// LostBatches counts feature and alert batches that could not be
	// queued at all (the spool still failed at the drain timeout; a sink
	// without a spool had stopped), each logged.
	LostBatches uint64 `json:"lost_batches"`
	// Latency from sending a batch to its acknowledgement (stored).
	Latency Histogram `json:"latency"`
}

// Stats returns a snapshot of every stage's counters.
func (p *Pipeline) Stats() Stats {
	s := Stats{
		Packets: p.stats.packets.Load(), Bytes: p.stats.bytes.Load(), Batches: p.stats.batches.Load(), Alerts: p.stats.alerts.Load(),
		CaptureLost: p.stats.captureLost.Load(), PacketQueue: len(p.packets),
		Windows:  map[string]uint64{"5s": p.stats.win5.Load(), "30s": p.stats.win30.Load(), "180s": p.stats.win180.Load()},
		Captures: map[string]sdk.CaptureCounters{},
	}
	p.stats.captureCounters.Range(func(k, v any) bool {
		s.Captures[k.(string)] = v.(sdk.CaptureCounters)
		return true
	})
	if as := p.aggStats.Load(); as != nil {
		s.Aggregator = AggregatorStats{ActiveSources: as.ActiveSources, SourcesDropped: as.SourcesDropped, PacketsDropped: as.PacketsDropped, LatePackets: as.LatePackets}
	}
	set := p.stages.Load()
	for _, d := range set.detectors {
		s.Detectors = append(s.Detectors, DetectorStats{Name: d.p.Name(), Calls: d.calls.Load(), Alerts: d.alerts.Load(), Failures: d.fails.Load(), Queue: len(d.in), Latency: d.latency.snapshot(), CloseToAlert: d.closeToAlert.snapshot()})
	}
	for _, k := range set.sinks {
		ks := SinkStats{Name: k.p.Name(), Acked: k.w.Acked(), Rejected: k.w.Rejected(), Queue: k.w.Queued(), RawBatchesDropped: k.dropped.Load(), RawPacketsDropped: k.droppedP.Load(), Latency: k.latency.snapshot(),
			SpoolFullWaits: k.fullWaits.Load(), SpoolWriteErrors: k.writeErrors.Load(), SpooledPastBound: k.pastBound.Load(), LostBatches: k.lost.Load()}
		if k.spool != nil {
			sp := k.spool.Stats()
			ks.Spool = &sp
		}
		s.Sinks = append(s.Sinks, ks)
	}
	for _, pl := range set.captures {
		s.Plugins = append(s.Plugins, pl.Health())
	}
	for _, d := range set.detectors {
		s.Plugins = append(s.Plugins, d.p.Health())
	}
	for _, k := range set.sinks {
		s.Plugins = append(s.Plugins, k.p.Health())
	}
	sort.SliceStable(s.Plugins, func(i, j int) bool { return s.Plugins[i].Kind < s.Plugins[j].Kind })
	return s
}

// latencyBuckets are the upper bounds, in seconds, of latency histograms.
var latencyBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Quantile returns the upper bound of the bucket holding quantile q (0..1),
// or +Inf when it lies past the last bucket; 0 without observations.
func (h Histogram) Quantile(q float64) float64 {
	if h.Count == 0 {
		return 0
	}
	rank := uint64(q * float64(h.Count))
	for i, c := range h.Counts {
		if c >= rank && c > 0 {
			return h.Buckets[i]
		}
	}
	return math.Inf(1)
}

// Histogram is a cumulative latency histogram (Prometheus style).
type Histogram struct {
	Buckets []float64 `json:"buckets"`
	Counts  []uint64  `json:"counts"` // cumulative, one per bucket
	Count   uint64    `json:"count"`
	Sum     float64   `json:"sum"`
}

type latencyHist struct {
	mu     sync.Mutex
	counts []uint64
	count  uint64
	sum    float64
}

func newLatencyHist() *latencyHist { return &latencyHist{counts: make([]uint64, len(latencyBuckets))} }

func (h *latencyHist) observe(d time.Duration) {
	s := d.Seconds()
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, b := range latencyBuckets {
		if s <= b {
			h.counts[i]++
		}
	}
	h.count++
	h.sum += s
}

func (h *latencyHist) snapshot() Histogram {
	h.mu.Lock()
	defer h.mu.Unlock()
	return Histogram{Buckets: latencyBuckets, Counts: append([]uint64(nil), h.counts...), Count: h.count, Sum: h.sum}
}
