package api

import (
	"fmt"
	"sort"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/netguardian/netguardian/core/host"
	"github.com/netguardian/netguardian/core/pipeline"
)

// statsCollector turns a pipeline.Stats snapshot, read at scrape time,
// into const metrics: the pipeline keeps its own counters, so mirroring
// them into live Prometheus counters would count everything twice.
type statsCollector struct {
	s *Server

	packets, bytes, batches, alerts *prometheus.Desc
	windows, dropped, sourcesDrop   *prometheus.Desc
	late, activeSources             *prometheus.Desc
	restarts, failures, up          *prometheus.Desc
	pluginHealthy, pluginReported   *prometheus.Desc
	pluginGoroutines, pluginHeap    *prometheus.Desc
	pluginRuntimeMem                *prometheus.Desc
	queue                           *prometheus.Desc
	detCalls, detAlerts, detFails   *prometheus.Desc
	detLatency                      *prometheus.Desc
	sinkLatency                     *prometheus.Desc
	sinkAcked, sinkRejected         *prometheus.Desc
	spoolBytes, spoolMax            *prometheus.Desc
	spoolLost, spoolCut             *prometheus.Desc
	spoolWaits, spoolErrs, sinkLost *prometheus.Desc
	capDecodeErrs, capNonIP         *prometheus.Desc
	active, wsClients, wsDropped    *prometheus.Desc
}

func newStatsCollector(s *Server) *statsCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("netguardian_"+name, help, labels, nil)
	}
	return &statsCollector{
		s:                s,
		packets:          d("packets_total", "Packets the pipeline took from captures."),
		bytes:            d("bytes_total", "Bytes (frame lengths on the wire) the pipeline took from captures."),
		batches:          d("packet_batches_total", "Packet batches the pipeline took from captures."),
		alerts:           d("alerts_total", "Alerts raised by all detectors."),
		windows:          d("windows_total", "Windows closed, by size.", "window"),
		dropped:          d("dropped_packets_total", "Packets lost, by stage: kernel, capture (live restart), aggregator (max_sources), sink (raw packets shed).", "stage", "name"),
		sourcesDrop:      d("aggregator_sources_dropped_total", "Sources refused because max_sources was reached."),
		late:             d("late_packets_total", "Packets older than the watermark."),
		activeSources:    d("aggregator_active_sources", "Sources with open windows."),
		restarts:         d("plugin_restarts_total", "Plugin restarts after a crash.", "plugin", "kind"),
		failures:         d("plugin_failures_total", "Plugin call failures.", "plugin", "kind"),
		up:               d("plugin_up", "1 when the plugin is running.", "plugin", "kind", "state"),
		pluginHealthy:    d("plugin_healthy", "1 when the plugin's last report says healthy (polled every 2 s).", "plugin", "kind"),
		pluginReported:   d("plugin_reported", "A counter the plugin reports itself (its name in the label counter).", "plugin", "kind", "counter"),
		pluginGoroutines: d("plugin_goroutines", "Goroutines of the plugin process.", "plugin", "kind"),
		pluginHeap:       d("plugin_heap_live_bytes", "Heap the plugin process's last garbage collection found live.", "plugin", "kind"),
		pluginRuntimeMem: d("plugin_runtime_bytes", "Memory the plugin process's Go runtime holds from the OS.", "plugin", "kind"),
		queue:            d("queue_depth", "Batches waiting in a stage's queue.", "stage", "name"),
		detCalls:         d("detector_calls_total", "Detect calls.", "detector"),
		detAlerts:        d("detector_alerts_total", "Alerts raised, by detector.", "detector"),
		detFails:         d("detector_failures_total", "Detect calls that failed.", "detector"),
		detLatency:       d("detector_latency_seconds", "Duration of Detect calls.", "detector"),
		sinkLatency:      d("sink_latency_seconds", "Time from sending a batch to a sink to its acknowledgement (stored).", "sink"),
		sinkAcked:        d("sink_acked_batches_total", "Record batches a sink accepted.", "sink"),
		sinkRejected:     d("sink_rejected_batches_total", "Record batches a sink refused (and that will be re-sent).", "sink"),
		spoolBytes:       d("sink_spool_bytes", "Bytes a sink's disk spool takes (segment files).", "sink"),
		spoolMax:         d("sink_spool_max_bytes", "The bound of a sink's disk spool (sensor.spool_max_mib).", "sink"),
		spoolLost:        d("sink_spool_lost_batches_total", "Spooled batches found damaged (at start, or when read) and lost.", "sink"),
		spoolCut:         d("sink_spool_lost_bytes_total", "Bytes of damaged spool records cut off.", "sink"),
		spoolWaits:       d("sink_spool_full_waits_total", "Feature and alert batches that found a sink's spool full and waited for room.", "sink"),
		spoolErrs:        d("sink_spool_write_errors_total", "Writes to a sink's spool that failed (disk errors; features and alerts retry, raw packets are dropped).", "sink"),
		sinkLost:         d("sink_lost_batches_total", "Feature and alert batches that could not be queued for a sink and are lost.", "sink"),
		capDecodeErrs:    d("capture_decode_errors_total", "Frames a capture could not decode.", "capture"),
		capNonIP:         d("capture_non_ip_total", "Frames without an IP layer.", "capture"),
		active:           d("active_alerts", "Active alerts: the newest per (source, label) whose window ended within active_for."),
		wsClients:        d("websocket_clients", "Dashboard WebSocket clients connected."),
		wsDropped:        d("websocket_slow_clients_total", "Dashboard WebSocket clients disconnected for falling behind."),
	}
}

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.packets, c.bytes, c.batches, c.alerts, c.windows, c.dropped, c.sourcesDrop, c.late,
		c.activeSources, c.restarts, c.failures, c.up, c.pluginHealthy, c.pluginReported, c.pluginGoroutines, c.pluginHeap, c.pluginRuntimeMem, c.queue, c.detCalls, c.detAlerts, c.detFails, c.detLatency, c.sinkLatency,
		c.sinkAcked, c.sinkRejected, c.spoolBytes, c.spoolMax, c.spoolLost, c.spoolCut, c.spoolWaits, c.spoolErrs, c.sinkLost, c.capDecodeErrs, c.capNonIP, c.active, c.wsClients, c.wsDropped} {
		ch <- d
	}
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.cfg.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter(c.packets, st.Packets)
	counter(c.bytes, st.Bytes)
	counter(c.batches, st.Batches)
	counter(c.alerts, st.Alerts)
	for _, w := range sortedKeys(st.Windows) {
		counter(c.windows, st.Windows[w], w)
	}
	var kernel uint64
	for _, name := range sortedKeys(st.Captures) {
		cc := st.Captures[name]
		kernel += cc.KernelDrops
		counter(c.dropped, cc.KernelDrops, "kernel", name)
		counter(c.capDecodeErrs, cc.DecodeErrors, name)
		counter(c.capNonIP, cc.NonIP, name)
	}
	counter(c.dropped, st.CaptureLost, "capture", "")
	counter(c.dropped, st.Aggregator.PacketsDropped, "aggregator", "")
	counter(c.sourcesDrop, st.Aggregator.SourcesDropped)
	counter(c.late, st.Aggregator.LatePackets)
	gauge(c.activeSources, float64(st.Aggregator.ActiveSources))
	gauge(c.queue, float64(st.PacketQueue), "packets", "")
	for _, p := range st.Plugins {
		counter(c.restarts, p.Restarts, p.Name, string(p.Kind))
		counter(c.failures, p.Failures, p.Name, string(p.Kind))
		up := 0.0
		if p.State == host.StateRunning {
			up = 1
		}
		gauge(c.up, up, p.Name, string(p.Kind), string(p.State))
		if r := p.Reported; r != nil {
			healthy := 0.0
			if r.Healthy {
				healthy = 1
			}
			gauge(c.pluginHealthy, healthy, p.Name, string(p.Kind))
			for _, name := range sortedKeys(r.Counters) {
				ch <- prometheus.MustNewConstMetric(c.pluginReported, prometheus.UntypedValue, float64(r.Counters[name]), p.Name, string(p.Kind), name)
			}
			gauge(c.pluginGoroutines, float64(r.Process.Goroutines), p.Name, string(p.Kind))
			gauge(c.pluginHeap, float64(r.Process.HeapLiveBytes), p.Name, string(p.Kind))
			gauge(c.pluginRuntimeMem, float64(r.Process.RuntimeBytes), p.Name, string(p.Kind))
		}
	}
	for _, d := range st.Detectors {
		counter(c.detCalls, d.Calls, d.Name)
		counter(c.detAlerts, d.Alerts, d.Name)
		counter(c.detFails, d.Failures, d.Name)
		gauge(c.queue, float64(d.Queue), "detector", d.Name)
		if m, err := constHistogram(c.detLatency, d.Latency, d.Name); err == nil {
			ch <- m
		} else {
			c.s.log.Warn("detector latency histogram", "detector", d.Name, "error", err)
		}
	}
	for _, k := range st.Sinks {
		counter(c.sinkAcked, k.Acked, k.Name)
		counter(c.sinkRejected, k.Rejected, k.Name)
		counter(c.dropped, k.RawPacketsDropped, "sink", k.Name)
		counter(c.sinkLost, k.LostBatches, k.Name)
		gauge(c.queue, float64(k.Queue), "sink", k.Name)
		if sp := k.Spool; sp != nil {
			gauge(c.spoolBytes, float64(sp.DiskBytes), k.Name)
			gauge(c.spoolMax, float64(sp.MaxBytes), k.Name)
			counter(c.spoolLost, sp.LostRecords, k.Name)
			counter(c.spoolCut, uint64(sp.LostBytes), k.Name)
			counter(c.spoolWaits, k.SpoolFullWaits, k.Name)
			counter(c.spoolErrs, k.SpoolWriteErrors, k.Name)
		}
		if m, err := constHistogram(c.sinkLatency, k.Latency, k.Name); err == nil {
			ch <- m
		} else {
			c.s.log.Warn("sink latency histogram", "sink", k.Name, "error", err)
		}
	}
	gauge(c.active, float64(c.s.active.count()))
	gauge(c.wsClients, float64(c.s.hub.count()))
	counter(c.wsDropped, c.s.hub.dropped.Load())
}

// constHistogram converts a pipeline histogram (cumulative counts per
// upper bound) into a Prometheus one.
func constHistogram(d *prometheus.Desc, h pipeline.Histogram, labels ...string) (prometheus.Metric, error) {
	if len(h.Buckets) != len(h.Counts) {
		return nil, fmt.Errorf("%d buckets but %d counts", len(h.Buckets), len(h.Counts))
	}
	b := make(map[float64]uint64, len(h.Buckets))
	for i, ub := range h.Buckets {
		b[ub] = h.Counts[i]
	}
	return prometheus.NewConstHistogram(d, h.Count, h.Sum, b, labels...)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (s *Server) registerMetrics() error {
	for _, c := range []prometheus.Collector{
		newStatsCollector(s),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := s.registry.Register(c); err != nil {
			return fmt.Errorf("api: metrics: %w", err)
		}
	}
	return nil
}
