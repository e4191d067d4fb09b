package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/netguardian/netguardian/core/api"
	"github.com/netguardian/netguardian/core/config"
	"github.com/netguardian/netguardian/core/pipeline"
	"github.com/netguardian/netguardian/core/store"
	"github.com/netguardian/netguardian/core/window"
	"github.com/netguardian/netguardian/sdk"
)

func runCommand() *ffcli.Command {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	path := fs.String("config", "netguardian.hcl", "config file")
	drain := fs.Duration("drain-timeout", 30*time.Second, "how long a stop may take to flush windows, detectors and sinks")
	return &ffcli.Command{
		Name:       "run",
		ShortUsage: "netguardian run [-config FILE]",
		ShortHelp:  "start the sensor",
		LongHelp: "Starts the plugins of the config and runs until the captures end or SIGINT/SIGTERM.\n" +
			"A stop drains in order: capture stops, windows flush, detectors finish, sinks flush;\n" +
			"-drain-timeout bounds it, and what sinks did not acknowledge stays in their spool.\n" +
			"SIGHUP reloads the config file: it is validated first (a bad one is logged and the\n" +
			"running config kept), then only the plugins whose blocks changed are restarted.",
		FlagSet: fs,
		Exec: func(ctx context.Context, _ []string) error {
			// Before anything else: SIGHUP's default action would end the process.
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			cfg, err := loadConfig(*path)
			if err != nil {
				return err
			}
			level := new(slog.LevelVar)
			level.Set(cfg.Sensor.LogLevel)
			log := newLeveledLogger(cfg, os.Stderr, level)
			ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
			defer stop()
			var s *sensor
			srv, err := api.New(api.Config{
				Listen: cfg.API.Listen, Token: cfg.API.Token, AllowedOrigins: cfg.API.AllowedOrigins,
				SnapshotInterval: cfg.API.SnapshotInterval, ActiveFor: cfg.API.ActiveFor, Log: log,
				Stats:   func() pipeline.Stats { return s.stats() },
				Plugins: func() []api.PluginInfo { return s.pluginInfos() },
				Store:   lazyStore{func() sdk.Store { return s.apiStore() }},
			})
			if err != nil {
				return err
			}
			s, err = newSensor(ctx, cfg, log, sensorHooks{onAlert: srv.PublishAlert, onPackets: srv.ObservePackets})
			if err != nil {
				return err
			}
			s.level = level
			defer func() { s.current().stop() }()
			ln, err := net.Listen("tcp", cfg.API.Listen)
			if err != nil {
				return fmt.Errorf("api: %w", err)
			}
			apiCtx, stopAPI := context.WithCancel(context.WithoutCancel(ctx))
			defer stopAPI()
			apiDone := make(chan error, 1)
			go func() { apiDone <- srv.ServeListener(apiCtx, ln) }()
			log.Info("sensor started", "sensor", cfg.Sensor.Name, "api", "http://"+ln.Addr().String()+"/",
				"captures", len(s.plugins.captures), "detectors", len(s.plugins.detectors), "sinks", len(s.plugins.sinks))
			go s.logStats(ctx, log, 10*time.Second)
			reloadCtx, stopReloads := context.WithCancel(ctx)
			reloadsDone := make(chan struct{})
			go func() {
				defer close(reloadsDone)
				s.reloadOnSignal(reloadCtx, hup, *path, *drain)
			}()
			err = s.pipeline.Run(ctx, *drain)
			// A reload in progress finishes (or gives up) before the
			// plugins are stopped, so none it started is left running.
			stopReloads()
			<-reloadsDone
			st := s.pipeline.Stats()
			log.Info("sensor stopped", "packets", st.Packets, "bytes", st.Bytes, "windows", st.Windows, "alerts", st.Alerts)
			stopAPI()
			if apiErr := <-apiDone; apiErr != nil && !errors.Is(apiErr, context.Canceled) && !errors.Is(apiErr, http.ErrServerClosed) {
				log.Warn("api stopped with an error", "error", apiErr)
			}
			return err
		},
	}
}

// sensor is a configured pipeline with its plugins and the embedded store.
type sensor struct {
	// cfg is the running configuration: after a reload, the new file's
	// plugin blocks with the core settings that could be applied (the
	// others keep their values until a restart).
	cfg      *config.Config
	plugins  *plugins // replaced by a reload, under mu
	pipeline *pipeline.Pipeline
	store    *store.Memory
	log      *slog.Logger
	level    *slog.LevelVar // sensor.log_level, which a reload applies; may be nil

	mu      sync.RWMutex
	pending []string // changed core settings waiting for a restart, under mu
	reloads reloadStatus
}

// current returns the running plugins.
func (s *sensor) current() *plugins {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.plugins
}

// sensorHooks receive the pipeline's live events (the API's WebSocket).
type sensorHooks struct {
	onAlert   func(sdk.Alert)
	onPackets func(*sdk.PacketBatch)
}

// newSensor starts and configures the plugins of cfg and builds the pipeline.
func newSensor(ctx context.Context, cfg *config.Config, log *slog.Logger, hooks sensorHooks) (*sensor, error) {
	ps, diags := startPlugins(ctx, cfg, log)
	if len(diags) > 0 {
		printDiags(cfg, diags)
	}
	if diags.HasErrors() {
		return nil, errReported
	}
	if len(ps.captures) == 0 && len(ps.sinks) == 0 {
		ps.stop()
		return nil, errors.New("nothing to do: the config has no enabled capture or sink block")
	}
	if err := ps.configureProcessors(ctx, cfg); err != nil {
		ps.stop()
		return nil, err
	}
	mem := store.NewMemory(store.Options{})
	rec := &memoryRecorder{mem: mem}
	pl, err := pipeline.New(pipeline.Config{
		Sensor:    cfg.Sensor.Name,
		Captures:  ps.captures,
		Detectors: ps.detectors,
		Sinks:     ps.sinks,
		Window: window.Options{
			Sizes: sdk.WindowSizes, Lateness: cfg.Aggregation.Lateness, IdleTimeout: cfg.Aggregation.IdleTimeout,
			MaxSources: cfg.Aggregation.MaxSources, DistinctExactLimit: cfg.Aggregation.DistinctExactLimit,
		},
		QueueDepth:     cfg.Pipeline.QueueDepth,
		DropRawPackets: cfg.Pipeline.DropRawPackets,
		SpoolDir:       cfg.Sensor.SpoolDir,
		SpoolMaxBytes:  int64(cfg.Sensor.SpoolMaxMiB) << 20,
		Recorder:       rec,
		OnAlert:        hooks.onAlert,
		OnPackets:      hooks.onPackets,
		Live:           ps.live,
		Log:            log,
	})
	if err != nil {
		ps.stop()
		return nil, err
	}
	if err := ps.configureCaptures(ctx, cfg, pl.WantsFrames()); err != nil {
		ps.stop()
		return nil, err
	}
	for _, p := range ps.all() {
		ps.watch(ctx, p)
	}
	s := &sensor{cfg: cfg, plugins: ps, pipeline: pl, store: mem, log: log}
	rec.skip = func() bool { return s.apiStore() != sdk.Store(mem) }
	return s, nil
}

// memoryRecorder fills the embedded store only while it is what the API
// answers from. With a sink serving queries nothing reads it, and its
// bounded history (a few hundred MB at the default caps with thousands of
// sources) would only cost the core memory. The check is made per batch,
// so a reload that adds or removes such a sink takes effect at once.
type memoryRecorder struct {
	mem  *store.Memory
	skip func() bool
}

func (r *memoryRecorder) AppendFeatures(ctx context.Context, b *sdk.FeatureBatch) error {
	if r.skip != nil && r.skip() {
		return nil
	}
	return r.mem.AppendFeatures(ctx, b)
}

func (r *memoryRecorder) AppendAlerts(ctx context.Context, alerts []sdk.Alert) error {
	if r.skip != nil && r.skip() {
		return nil
	}
	return r.mem.AppendAlerts(ctx, alerts)
}

// apiStore is what the API queries: a sink that serves queries (the whole
// database, every sensor), else the embedded in-memory store.
func (s *sensor) apiStore() sdk.Store {
	for _, p := range s.current().sinks {
		if p.Info().ServesStore {
			return p.Store()
		}
	}
	return s.store
}

func (s *sensor) pluginInfos() []api.PluginInfo {
	var out []api.PluginInfo
	for _, p := range s.current().all() {
		out = append(out, api.PluginInfo{Name: p.Name(), Info: p.Info()})
	}
	return out
}

// lazyStore resolves the API's store at each query: the sensor is built
// after the API server (the pipeline needs the server's hooks).
type lazyStore struct{ get func() sdk.Store }

func (l lazyStore) QueryFeatures(ctx context.Context, q sdk.FeatureQuery) (*sdk.FeatureBatch, error) {
	return l.get().QueryFeatures(ctx, q)
}

func (l lazyStore) QueryProtocols(ctx context.Context, q sdk.TimeRange) ([]sdk.ProtocolCount, error) {
	return l.get().QueryProtocols(ctx, q)
}

func (l lazyStore) QueryTopSources(ctx context.Context, q sdk.TopSourcesQuery) ([]sdk.SourceTotal, error) {
	return l.get().QueryTopSources(ctx, q)
}

func (l lazyStore) QueryAlerts(ctx context.Context, q sdk.AlertQuery) (sdk.AlertPage, error) {
	return l.get().QueryAlerts(ctx, q)
}

func (s *sensor) logStats(ctx context.Context, log *slog.Logger, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var last uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := s.pipeline.Stats()
		log.Info("stats", "packets", st.Packets, "pps", float64(st.Packets-last)/every.Seconds(), "windows", st.Windows, "alerts", st.Alerts,
			"active_sources", st.Aggregator.ActiveSources, "late", st.Aggregator.LatePackets)
		last = st.Packets
	}
}
