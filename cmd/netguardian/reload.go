package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/netguardian/netguardian/core/config"
	"github.com/netguardian/netguardian/core/host"
	"github.com/netguardian/netguardian/core/pipeline"
	"github.com/netguardian/netguardian/sdk"
)

// A SIGHUP reload re-reads the config file and applies what changed,
// leaving everything else running:
//
//   - The file is parsed and validated as `netguardian validate` does,
//     each plugin's config block decoded against its plugin's schema, and
//     every new or changed plugin started and configured, before anything
//     running is touched. Any error is logged (file:line:col) and the
//     running configuration stays as it was.
//   - A plugin block is changed when its resolved plugin path, sha256,
//     env or decoded config differs (comments and formatting do not
//     count), or when its plugin had failed (a reload retries it). Only
//     changed, added and removed plugins start or stop; the others keep
//     their process, queue and counters.
//   - Core settings: sensor.log_level and sensor.plugin_dir apply at once.
//     Every other core setting needs a restart of netguardian: a reload
//     logs each changed one by name and keeps the running value.

// reloadableSettings are the core settings a reload applies.
var reloadableSettings = map[string]bool{"sensor.log_level": true, "sensor.plugin_dir": true}

// errReloadRejected marks a reload whose reasons were already logged.
var errReloadRejected = errors.New("reload rejected")

// reloadStatus counts reloads for the health payload and /metrics.
type reloadStatus struct {
	mu             sync.Mutex
	succeeded      uint64
	failed         uint64
	last           time.Time
	lastOK         bool
	pendingRestart []string
}

func (r *reloadStatus) record(err error, pending []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last, r.lastOK = time.Now().UTC(), err == nil
	if err != nil {
		r.failed++
		return
	}
	r.succeeded++
	r.pendingRestart = pending
}

func (r *reloadStatus) snapshot() *pipeline.ReloadStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := &pipeline.ReloadStats{Succeeded: r.succeeded, Failed: r.failed, LastOK: r.lastOK, PendingRestart: slices.Clone(r.pendingRestart)}
	if !r.last.IsZero() {
		t := r.last
		st.Last = &t
	}
	return st
}

// stats is the pipeline's counters with the reloads'.
func (s *sensor) stats() pipeline.Stats {
	st := s.pipeline.Stats()
	st.Reload = s.reloads.snapshot()
	return st
}

// reloadOnSignal reloads the config file at path on every signal from hup
// until ctx ends. Reloads run one at a time.
func (s *sensor) reloadOnSignal(ctx context.Context, hup <-chan os.Signal, path string, flushTimeout time.Duration) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		s.log.Info("reloading the config", "config", path)
		_, err := s.reload(ctx, path, flushTimeout)
		if ctx.Err() != nil {
			return // stopping: nothing to report
		}
		s.reloads.record(err, s.pendingRestart())
		if err != nil && !errors.Is(err, errReloadRejected) {
			s.log.Error("reload failed; the running config is kept", "config", path, "error", err)
		}
	}
}

func (s *sensor) pendingRestart() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.pending
}

// reloadResult is what a reload did, by plugin ("detector portscan").
type reloadResult struct {
	restarted, added, removed []string
	unchanged                 int
	// pending are the changed core settings that wait for a restart.
	pending []string
}

// pluginChange is one plugin a reload starts.
type pluginChange struct {
	prev, next *host.Plugin // prev is nil for an added block
	why        []string
}

func pluginLabel(p *host.Plugin) string { return string(p.Kind()) + " " + p.Name() }

// reload applies the config file at path: see the comment at the top of
// this file. It returns errReloadRejected when the file or a plugin
// refused it (the reasons are logged).
func (s *sensor) reload(ctx context.Context, path string, flushTimeout time.Duration) (*reloadResult, error) {
	log := s.log
	cfg, diags := config.Load(path)
	if cfg != nil && !diags.HasErrors() {
		diags = append(diags, config.Validate(cfg)...)
	}
	if diags.HasErrors() {
		logDiagnostics(log, diags)
		log.Error("reload rejected: the config has errors; the running config is kept", "config", path, "errors", countErrors(diags))
		return nil, errReloadRejected
	}

	s.mu.RLock()
	old, running := s.plugins, s.cfg
	s.mu.RUnlock()
	next := newPlugins()
	var changes []pluginChange
	var started []*host.Plugin
	abandon := func() {
		for _, p := range started {
			p.Stop()
		}
	}

	// Start what is new or changed and decode every block; nothing
	// running is touched yet.
	for _, b := range cfg.Plugins() {
		prev := old.find(b.Kind, b.Name)
		var why []string
		if prev != nil {
			path, err := host.Resolve(b.Plugin, cfg.Sensor.PluginDir)
			if err != nil {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Plugin not found",
					Detail: fmt.Sprintf("%s %q: %s.", b.Kind, b.Name, err), Subject: b.PluginRange.Ptr()})
				continue
			}
			src := pluginSource{path: path, sha256: b.SHA256, env: b.Env}
			why = old.sources[prev].changes(src)
			if prev.Health().State == host.StateFailed {
				why = append(why, "failed")
			}
			if len(why) == 0 {
				// Same binary: its schema decodes the block; the config
				// changed only when the decoded values did.
				js, d := config.DecodePluginConfig(b, prev.Info().Config)
				diags = append(diags, d...)
				if d.HasErrors() {
					continue
				}
				if bytes.Equal(js, old.configs[prev]) {
					next.add(prev, js, src)
					continue
				}
				why = []string{"config"}
			}
		}
		p, src, d := startBlock(ctx, b, cfg.Sensor.PluginDir, log)
		diags = append(diags, d...)
		if p == nil {
			continue
		}
		started = append(started, p)
		js, d := config.DecodePluginConfig(b, p.Info().Config)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		next.add(p, js, src)
		changes = append(changes, pluginChange{prev: prev, next: p, why: why})
	}
	if diags.HasErrors() {
		abandon()
		logDiagnostics(log, diags)
		log.Error("reload rejected: the config has errors; the running config is kept", "config", path, "errors", countErrors(diags))
		return nil, errReloadRejected
	}
	logDiagnostics(log, diags) // warnings

	// New plugins get their config; a plugin that refuses it rejects the
	// reload, as it would refuse to start.
	var processors, captures []*host.Plugin
	for _, c := range changes {
		if c.next.Kind() == sdk.KindCapture {
			captures = append(captures, c.next)
		} else {
			processors = append(processors, c.next)
		}
	}
	if err := next.configureProcessorsOf(ctx, running, processors); err != nil {
		abandon()
		log.Error("reload rejected: a plugin refused its config; the running config is kept", "error", err)
		return nil, errReloadRejected
	}
	frames := pipeline.SinksWantFrames(next.sinks)
	if err := next.configureCapturesOf(ctx, running, frames, captures); err != nil {
		abandon()
		log.Error("reload rejected: a plugin refused its config; the running config is kept", "error", err)
		return nil, errReloadRejected
	}
	if frames != old.frames {
		for _, c := range next.captures {
			if !slices.Contains(captures, c) {
				log.Warn("reload: the sinks changed whether they store raw frames; this capture keeps its setting until it restarts (change its block, or restart netguardian)",
					"capture", c.Name(), "include_frames", old.frames)
			}
		}
	}

	// Swap the pipeline's stages, then stop what was replaced or removed.
	if err := s.pipeline.Reload(ctx, pipeline.Plugins{Captures: next.captures, Detectors: next.detectors, Sinks: next.sinks, Live: next.live}, flushTimeout); err != nil {
		abandon()
		if errors.Is(err, pipeline.ErrStopping) {
			return nil, err
		}
		log.Error("reload rejected; the running config is kept", "error", err)
		return nil, errReloadRejected
	}
	for _, c := range changes {
		next.watch(ctx, c.next)
	}
	res := &reloadResult{}
	old.mu.Lock()
	for _, p := range next.all() {
		if cancel, ok := old.watches[p]; ok { // kept: its watcher moves over
			next.watches[p] = cancel
			delete(old.watches, p)
		}
	}
	old.mu.Unlock()
	var retired []*host.Plugin
	oldPIDs := map[*host.Plugin]int{}
	for _, p := range old.all() {
		if !slices.Contains(next.all(), p) {
			retired = append(retired, p)
			oldPIDs[p] = p.Health().PID
		}
	}
	for _, p := range retired {
		pid := oldPIDs[p]
		old.stopPlugin(p)
		if next.find(p.Kind(), p.Name()) == nil {
			res.removed = append(res.removed, pluginLabel(p))
			log.Info("reload: plugin removed", "plugin", p.Name(), "kind", p.Kind(), "pid", pid)
		}
	}
	for _, c := range changes {
		if c.prev == nil {
			res.added = append(res.added, pluginLabel(c.next))
			log.Info("reload: plugin added", "plugin", c.next.Name(), "kind", c.next.Kind(), "pid", c.next.Health().PID)
			continue
		}
		res.restarted = append(res.restarted, pluginLabel(c.next))
		log.Info("reload: plugin restarted", "plugin", c.next.Name(), "kind", c.next.Kind(), "changed", strings.Join(c.why, ","),
			"old_pid", oldPIDs[c.prev], "pid", c.next.Health().PID)
	}
	res.unchanged = len(next.all()) - len(changes)

	// Core settings.
	applied := *cfg
	applied.Sensor, applied.API, applied.Aggregation, applied.Pipeline = running.Sensor, running.API, running.Aggregation, running.Pipeline
	applied.Sensor.PluginDir = cfg.Sensor.PluginDir
	applied.Sensor.LogLevel = cfg.Sensor.LogLevel
	before, after := running.CoreSettings(), cfg.CoreSettings()
	names := make([]string, 0, len(after))
	for name := range after {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if reflect.DeepEqual(before[name], after[name]) {
			continue
		}
		if reloadableSettings[name] {
			log.Info("reload: setting applied", "setting", name)
			continue
		}
		// Never the value: api.token is one of these.
		log.Warn("reload: setting changed but needs a restart of netguardian; the running value is kept", "setting", name)
		res.pending = append(res.pending, name)
	}
	if s.level != nil {
		s.level.Set(cfg.Sensor.LogLevel)
	}

	s.mu.Lock()
	s.plugins, s.cfg, s.pending = next, &applied, res.pending
	s.mu.Unlock()
	log.Info("reloaded", "config", path, "restarted", listOrNone(res.restarted), "added", listOrNone(res.added),
		"removed", listOrNone(res.removed), "unchanged", res.unchanged, "needs_restart", listOrNone(res.pending))
	return res, nil
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

func countErrors(diags hcl.Diagnostics) int {
	n := 0
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			n++
		}
	}
	return n
}

// logDiagnostics logs each diagnostic as one line whose "diagnostic" is
// the first line `netguardian validate` prints for it (file:line:col:
// severity: summary), so the log stays one event per line in text and
// JSON formats. Details name settings, never secret values.
func logDiagnostics(log interface {
	Error(string, ...any)
	Warn(string, ...any)
}, diags hcl.Diagnostics) {
	for _, d := range diags {
		sev, emit := "error", log.Error
		if d.Severity == hcl.DiagWarning {
			sev, emit = "warning", log.Warn
		}
		where := ""
		if d.Subject != nil {
			where = fmt.Sprintf("%s:%d:%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		emit("reload: config "+sev, "diagnostic", where+sev+": "+d.Summary, "detail", d.Detail)
	}
}
