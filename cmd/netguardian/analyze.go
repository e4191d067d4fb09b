package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/schollz/progressbar/v3"

	"github.com/netguardian/netguardian/core/config"
	"github.com/netguardian/netguardian/core/pipeline"
	"github.com/netguardian/netguardian/core/window"
	"github.com/netguardian/netguardian/sdk"
)

func analyzeCommand() *ffcli.Command {
	fs := flag.NewFlagSet("analyze", flag.ContinueOnError)
	path := fs.String("config", "", "config whose detectors and sinks to use (default: the bundled detector, if built)")
	asJSON := fs.Bool("json", false, "write the report as JSON on stdout")
	csvPath := fs.String("features-csv", "", "write every window's features to this CSV file")
	noDetect := fs.Bool("no-detectors", false, "run without detectors (windows and features only)")
	quiet := fs.Bool("quiet", false, "no progress bar and no logs below warnings")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the core to FILE, and of each plugin to FILE.<block name>")
	return &ffcli.Command{
		Name:       "analyze",
		ShortUsage: "netguardian analyze [-config FILE] [-json] [-features-csv FILE] CAPTURE...",
		ShortHelp:  "run the whole pipeline over capture files as fast as possible and print a report",
		LongHelp: "Replays pcap/pcapng files (gzip too) through capture-pcap, the window aggregator,\n" +
			"the detectors and sinks of -config (or the bundled detector), and prints totals,\n" +
			"protocol mix, top sources, windows per size and alerts.",
		FlagSet: fs,
		Exec: func(ctx context.Context, files []string) error {
			if len(files) == 0 {
				fmt.Fprintln(os.Stderr, "usage: netguardian analyze [flags] CAPTURE...")
				return errUsage
			}
			for _, f := range files {
				if _, err := os.Stat(f); err != nil {
					return fmt.Errorf("analyze: %w", err)
				}
			}
			cfg, err := analyzeConfig(*path, files, *noDetect)
			if err != nil {
				return err
			}
			if *cpuProfile != "" {
				stopProfile, err := profileCPU(cfg, *cpuProfile)
				if err != nil {
					return fmt.Errorf("analyze: -cpuprofile: %w", err)
				}
				defer stopProfile()
			}
			level := slog.LevelInfo
			if *quiet || *asJSON {
				level = slog.LevelWarn
			}
			cfg.Sensor.LogLevel = max(cfg.Sensor.LogLevel, level)
			log := newLogger(cfg, os.Stderr)
			ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
			defer stop()
			return analyze(ctx, cfg, log, analyzeOptions{json: *asJSON, csvPath: *csvPath, progress: !*quiet && isatty.IsTerminal(os.Stderr.Fd())}, os.Stdout)
		},
	}
}

// analyzeConfig builds the config for analyze: the captures are replaced by
// one capture-pcap replaying files as fast as possible.
func analyzeConfig(path string, files []string, noDetect bool) (*config.Config, error) {
	var cfg *config.Config
	if path != "" {
		c, err := loadConfig(path, config.SummaryNothingToObserve) // the files are the capture
		if err != nil {
			return nil, err
		}
		cfg = c
	} else {
		cfg = config.Default()
	}
	quoted := make([]string, len(files))
	for i, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil {
			return nil, err
		}
		quoted[i] = strconv.Quote(abs)
	}
	src := fmt.Sprintf("capture \"analyze\" {\n  plugin = \"capture-pcap\"\n  config {\n    files = [%s]\n    speed = 0\n  }\n}\n", strings.Join(quoted, ", "))
	if path == "" && !noDetect {
		if _, err := os.Stat(filepath.Join(cfg.Sensor.PluginDir, "detector-xgboost")); err == nil {
			src += "detector \"xgboost\" {\n  plugin = \"detector-xgboost\"\n}\n"
		}
	}
	extra, diags := config.Parse("<analyze>", []byte(src))
	if diags.HasErrors() {
		printDiags(extra, diags)
		return nil, errReported
	}
	cfg.Captures = extra.Captures
	if path == "" {
		cfg.Detectors = extra.Detectors
	}
	if noDetect {
		cfg.Detectors = nil
	}
	return cfg, nil
}

// profileCPU starts profiling the core into path and has every plugin of
// cfg profile itself into path.<block name> (NETGUARDIAN_PLUGIN_CPUPROFILE,
// written when the plugin stops). The returned func stops the core's.
func profileCPU(cfg *config.Config, path string) (func(), error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	for _, blocks := range [][]config.PluginBlock{cfg.Captures, cfg.Detectors, cfg.Sinks} {
		for i := range blocks {
			b := &blocks[i]
			env := maps.Clone(b.Env)
			if env == nil {
				env = config.Env{}
			}
			env["NETGUARDIAN_PLUGIN_CPUPROFILE"] = abs + "." + b.Name
			b.Env = env
		}
	}
	f, err := os.Create(abs)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

type analyzeOptions struct {
	json     bool
	csvPath  string
	progress bool
}

func analyze(ctx context.Context, cfg *config.Config, log *slog.Logger, opts analyzeOptions, out io.Writer) error {
	rep := newReport()
	if opts.csvPath != "" {
		f, err := os.Create(opts.csvPath)
		if err != nil {
			return fmt.Errorf("features CSV: %w", err)
		}
		defer f.Close()
		rep.csv = newFeatureCSV(f)
	}
	ps, diags := startPlugins(ctx, cfg, log)
	if len(diags) > 0 {
		printDiags(cfg, diags)
	}
	if diags.HasErrors() {
		return errReported
	}
	defer ps.stop()
	if err := ps.configureProcessors(ctx, cfg); err != nil {
		return err
	}
	pl, err := pipeline.New(pipeline.Config{
		Sensor: cfg.Sensor.Name, Captures: ps.captures, Detectors: ps.detectors, Sinks: ps.sinks,
		Window: window.Options{Sizes: sdk.WindowSizes, Lateness: cfg.Aggregation.Lateness, MaxSources: cfg.Aggregation.MaxSources,
			DistinctExactLimit: cfg.Aggregation.DistinctExactLimit},
		QueueDepth: cfg.Pipeline.QueueDepth, DropRawPackets: false, Recorder: rep, Log: log,
	})
	if err != nil {
		return err
	}
	if err := ps.configureCaptures(ctx, cfg, pl.WantsFrames()); err != nil {
		return err
	}
	start := time.Now()
	stopBar := func() {}
	if opts.progress {
		stopBar = showProgress(ctx, pl)
	}
	runErr := pl.Run(ctx, time.Minute)
	stopBar()
	elapsed := time.Since(start)
	if rep.csv != nil {
		if err := rep.csv.flush(); err != nil {
			return fmt.Errorf("features CSV: %w", err)
		}
	}
	r := rep.finish(pl.Stats(), elapsed)
	if opts.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else {
		r.writeText(out)
	}
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return runErr
	}
	return nil
}

// showProgress draws bytes read of the input, packets/s and ETA on stderr.
func showProgress(ctx context.Context, pl *pipeline.Pipeline) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var bar *progressbar.ProgressBar
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		start := time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case <-done:
				if bar != nil {
					_ = bar.Finish()
					fmt.Fprintln(os.Stderr)
				}
				return
			case <-t.C:
			}
			st := pl.Stats()
			var read, total uint64
			for _, c := range st.Captures {
				read += c.BytesRead
				total += c.BytesTotal
			}
			if total == 0 {
				continue
			}
			if bar == nil {
				bar = progressbar.NewOptions64(int64(total), progressbar.OptionSetWriter(os.Stderr), progressbar.OptionShowBytes(true),
					progressbar.OptionSetWidth(30), progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionSetPredictTime(true),
					progressbar.OptionSetDescription("analyze"))
			}
			pps := float64(st.Packets) / time.Since(start).Seconds()
			bar.Describe(fmt.Sprintf("analyze %s pkts %s pkt/s", humanCount(float64(st.Packets)), humanCount(pps)))
			_ = bar.Set64(int64(read))
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

func humanCount(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.2fG", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}
