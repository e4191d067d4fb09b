package api

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/netguardian/netguardian/core/host"
	"github.com/netguardian/netguardian/core/pipeline"
)

// Health statuses.
const (
	statusOK       = "ok"
	statusDegraded = "degraded"
)

// pluginHealth leaves out host.Health's LastError: a plugin's error text
// can carry connection strings or SQL, which stay in the sensor's log.
type pluginHealth struct {
	Name     string     `json:"name"`
	Kind     string     `json:"kind"`
	Plugin   string     `json:"plugin"`
	Version  string     `json:"version"`
	State    host.State `json:"state"`
	PID      int        `json:"pid,omitempty"`
	Restarts uint64     `json:"restarts"`
	Failures uint64     `json:"failures"`
	// What the plugin reports itself (absent until it first answered).
	Healthy  *bool             `json:"healthy,omitempty"`
	Message  string            `json:"message,omitempty"`
	Counters map[string]uint64 `json:"counters,omitempty"`
	Process  *processHealth    `json:"process,omitempty"`
}

// processHealth is a plugin process's Go runtime.
type processHealth struct {
	Goroutines    uint64 `json:"goroutines"`
	HeapLiveBytes uint64 `json:"heap_live_bytes"`
	RuntimeBytes  uint64 `json:"runtime_bytes"`
	GCCycles      uint64 `json:"gc_cycles"`
}

// queues are queue depths in batches.
type queues struct {
	Packets   int            `json:"packets"`
	Detectors map[string]int `json:"detectors"`
	Sinks     map[string]int `json:"sinks"`
}

// drops are packets lost per stage since start: kernel (the capture's
// kernel drops), capture (lost while a live capture restarted), aggregator
// (sources beyond max_sources), sink (raw packets a full sink queue shed).
type drops struct {
	Kernel     uint64            `json:"kernel"`
	Capture    uint64            `json:"capture"`
	Aggregator uint64            `json:"aggregator"`
	Sink       uint64            `json:"sink"`
	Sinks      map[string]uint64 `json:"sinks"`
	Total      uint64            `json:"total"`
	// Recent: drops grew within the health window.
	Recent bool `json:"recent"`
}

// spoolHealth is a sink's disk spool: what waits in it, and what was
// found damaged and lost (at start, or when read).
type spoolHealth struct {
	PendingBatches int    `json:"pending_batches"`
	Bytes          int64  `json:"bytes"`
	MaxBytes       int64  `json:"max_bytes"`
	LostBatches    uint64 `json:"lost_batches"`
	LostBytes      int64  `json:"lost_bytes"`
	// FullWaits: feature and alert batches that found it full and waited;
	// WriteErrors: writes that failed (a disk error).
	FullWaits   uint64 `json:"full_waits"`
	WriteErrors uint64 `json:"write_errors"`
}

type healthView struct {
	Status      string            `json:"status"`
	Reasons     []string          `json:"reasons"`
	Packets     uint64            `json:"packets"`
	Bytes       uint64            `json:"bytes"`
	Alerts      uint64            `json:"alerts"`
	Windows     map[string]uint64 `json:"windows"`
	LatePackets uint64            `json:"late_packets"`
	Sources     int               `json:"active_sources"`
	Plugins     []pluginHealth    `json:"plugins"`
	Queues      queues            `json:"queues"`
	Drops       drops             `json:"drops"`
	// Spools, by sink, for sinks with a disk spool.
	Spools map[string]spoolHealth `json:"spools"`
	// Reload counts config reloads (SIGHUP); absent when the sensor does not reload.
	Reload *pipeline.ReloadStats `json:"reload,omitempty"`
}

func stageDrops(st pipeline.Stats) drops {
	d := drops{Capture: st.CaptureLost, Aggregator: st.Aggregator.PacketsDropped, Sinks: map[string]uint64{}}
	for _, c := range st.Captures {
		d.Kernel += c.KernelDrops
	}
	for _, k := range st.Sinks {
		d.Sinks[k.Name] = k.RawPacketsDropped
		d.Sink += k.RawPacketsDropped
	}
	d.Total = d.Kernel + d.Capture + d.Aggregator + d.Sink
	return d
}

// dropWatch remembers when the drop total last grew, so that health can
// say "dropping recently" from counters that only ever grow. It is fed by
// every snapshot tick and health request.
type dropWatch struct {
	window time.Duration

	mu       sync.Mutex
	seen     bool
	total    uint64
	lastGrew time.Time
}

// observe records total at now and reports whether it grew within window.
// Drops already present at the first look count as growth then: when they
// happened is unknown, so they are reported once, for one window.
func (w *dropWatch) observe(total uint64, now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if (!w.seen && total > 0) || total > w.total {
		w.lastGrew = now
	}
	w.seen, w.total = true, total
	return !w.lastGrew.IsZero() && now.Sub(w.lastGrew) < w.window
}

func (s *Server) health(st pipeline.Stats) healthView {
	h := healthView{
		Status: statusOK, Reasons: []string{}, Packets: st.Packets, Bytes: st.Bytes, Alerts: st.Alerts,
		Windows: st.Windows, LatePackets: st.Aggregator.LatePackets, Sources: st.Aggregator.ActiveSources,
		Plugins: []pluginHealth{},
		Queues:  queues{Packets: st.PacketQueue, Detectors: map[string]int{}, Sinks: map[string]int{}},
		Drops:   stageDrops(st),
		Spools:  map[string]spoolHealth{},
		Reload:  st.Reload,
	}
	if h.Windows == nil {
		h.Windows = map[string]uint64{}
	}
	for _, p := range st.Plugins {
		ph := pluginHealth{Name: p.Name, Kind: string(p.Kind), Plugin: p.Plugin, Version: p.Version,
			State: p.State, PID: p.PID, Restarts: p.Restarts, Failures: p.Failures}
		if r := p.Reported; r != nil {
			ph.Healthy, ph.Message, ph.Counters = &r.Healthy, r.Message, r.Counters
			ph.Process = &processHealth{Goroutines: r.Process.Goroutines, HeapLiveBytes: r.Process.HeapLiveBytes,
				RuntimeBytes: r.Process.RuntimeBytes, GCCycles: r.Process.GCCycles}
		}
		h.Plugins = append(h.Plugins, ph)
		switch {
		case p.State == host.StateRestarting || p.State == host.StateFailed:
			h.Reasons = append(h.Reasons, fmt.Sprintf("%s plugin %q is %s", p.Kind, p.Name, p.State))
		case p.State == host.StateRunning && p.Reported != nil && !p.Reported.Healthy:
			h.Reasons = append(h.Reasons, fmt.Sprintf("%s plugin %q reports unhealthy: %s", p.Kind, p.Name, p.Reported.Message))
		}
	}
	for _, d := range st.Detectors {
		h.Queues.Detectors[d.Name] = d.Queue
	}
	for _, k := range st.Sinks {
		h.Queues.Sinks[k.Name] = k.Queue
		if sp := k.Spool; sp != nil {
			h.Spools[k.Name] = spoolHealth{PendingBatches: sp.PendingRecords, Bytes: sp.DiskBytes, MaxBytes: sp.MaxBytes, LostBatches: sp.LostRecords, LostBytes: sp.LostBytes,
				FullWaits: k.SpoolFullWaits, WriteErrors: k.SpoolWriteErrors}
			if sp.LostRecords > 0 {
				h.Reasons = append(h.Reasons, fmt.Sprintf("sink %q lost %d spooled batches to damage (see the log)", k.Name, sp.LostRecords))
			}
		}
		if k.SpoolWriteErrors > 0 {
			h.Reasons = append(h.Reasons, fmt.Sprintf("sink %q failed to write its spool %d times (see the log)", k.Name, k.SpoolWriteErrors))
		}
		if k.LostBatches > 0 {
			h.Reasons = append(h.Reasons, fmt.Sprintf("sink %q lost %d feature or alert batches it could not queue (see the log)", k.Name, k.LostBatches))
		}
	}
	h.Drops.Recent = s.drops.observe(h.Drops.Total, s.now())
	if h.Drops.Recent {
		h.Reasons = append(h.Reasons, fmt.Sprintf("packets were dropped in the last %s", s.tune.dropWindow))
	}
	sort.Strings(h.Reasons)
	if len(h.Reasons) > 0 {
		h.Status = statusDegraded
	}
	return h
}
