package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

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
		LongHelp:   "Starts the plugins of the config and runs until the captures end or SIGINT/SIGTERM.\nA stop drains in order: capture stops, windows flush, detectors finish, sinks flush.",
		FlagSet:    fs,
		Exec: func(ctx context.Context, _ []string) error {
			cfg, err := loadConfig(*path)
			if err != nil {
				return err
			}
			log := newLogger(cfg, os.Stderr)
			ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
			defer stop()
			s, err := newSensor(ctx, cfg, log)
			if err != nil {
				return err
			}
			defer s.plugins.stop()
			log.Info("sensor started", "sensor", cfg.Sensor.Name, "captures", len(s.plugins.captures), "detectors", len(s.plugins.detectors), "sinks", len(s.plugins.sinks))
			go s.logStats(ctx, log, 10*time.Second)
			err = s.pipeline.Run(ctx, *drain)
			st := s.pipeline.Stats()
			log.Info("sensor stopped", "packets", st.Packets, "bytes", st.Bytes, "windows", st.Windows, "alerts", st.Alerts)
			return err
		},
	}
}

// sensor is a configured pipeline with its plugins and the embedded store.
type sensor struct {
	cfg      *config.Config
	plugins  *plugins
	pipeline *pipeline.Pipeline
	store    *store.Memory
}

// newSensor starts and configures the plugins of cfg and builds the pipeline.
func newSensor(ctx context.Context, cfg *config.Config, log *slog.Logger) (*sensor, error) {
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
	mem := store.NewMemory(store.Options{})
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
		Recorder:       mem,
		Log:            log,
	})
	if err != nil {
		ps.stop()
		return nil, err
	}
	if err := ps.configure(ctx, cfg, pl.WantsFrames()); err != nil {
		ps.stop()
		return nil, err
	}
	for _, p := range ps.all() {
		go p.Watch(ctx, 2*time.Second)
	}
	return &sensor{cfg: cfg, plugins: ps, pipeline: pl, store: mem}, nil
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
