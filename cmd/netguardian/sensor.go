package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/hashicorp/hcl/v2"
	"github.com/mattn/go-isatty"

	"github.com/netguardian/netguardian/core/config"
	"github.com/netguardian/netguardian/core/host"
	"github.com/netguardian/netguardian/sdk"
)

const (
	sdkProtocol      = sdk.ProtocolVersion
	sdkFeatureSchema = sdk.FeatureSchemaVersion
	sdkVersion       = sdk.Version
)

// loadConfig reads and validates path, printing diagnostics to stderr.
func loadConfig(path string) (*config.Config, error) {
	cfg, diags := config.Load(path)
	if cfg != nil && !diags.HasErrors() {
		diags = append(diags, config.Validate(cfg)...)
	}
	if len(diags) > 0 {
		printDiags(cfg, diags)
	}
	if diags.HasErrors() {
		return nil, errReported
	}
	return cfg, nil
}

func printDiags(cfg *config.Config, diags hcl.Diagnostics) {
	var files map[string]*hcl.File
	if cfg != nil {
		files = cfg.Files()
	}
	color := isatty.IsTerminal(os.Stderr.Fd())
	_ = config.WriteDiagnostics(os.Stderr, files, diags, color)
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.Sensor.LogLevel}
	if cfg.Sensor.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// plugins are the started plugins of a config, by kind, with their decoded
// config blocks.
type plugins struct {
	captures, detectors, sinks []*host.Plugin
	configs                    map[*host.Plugin][]byte
	// live is set when a capture reads an interface rather than files:
	// windows then also close by wall clock when traffic stops.
	live bool
}

func (ps *plugins) all() []*host.Plugin {
	out := append([]*host.Plugin(nil), ps.captures...)
	out = append(out, ps.detectors...)
	return append(out, ps.sinks...)
}

func (ps *plugins) stop() {
	for _, p := range ps.all() {
		p.Stop()
	}
}

// pluginEnv is what a plugin process gets as its environment: not the
// core's (which may hold secrets for other plugins), only PATH so it can
// find helper tools.
func pluginEnv() []string {
	return []string{"PATH=" + os.Getenv("PATH")}
}

// startPlugins starts every enabled plugin block and decodes its config
// block against the schema the plugin describes. Problems are diagnostics
// pointing at the block.
func startPlugins(ctx context.Context, cfg *config.Config, log *slog.Logger) (*plugins, hcl.Diagnostics) {
	ps := &plugins{configs: map[*host.Plugin][]byte{}}
	var diags hcl.Diagnostics
	for _, b := range cfg.Plugins() {
		path, err := host.Resolve(b.Plugin, cfg.Sensor.PluginDir)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Plugin not found",
				Detail: fmt.Sprintf("%s %q: %s.", b.Kind, b.Name, err), Subject: b.PluginRange.Ptr()})
			continue
		}
		p, err := host.Start(ctx, host.Spec{Name: b.Name, Kind: b.Kind, Path: path, SHA256: b.SHA256, Env: pluginEnv()}, log)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Plugin failed to start",
				Detail: err.Error(), Subject: b.PluginRange.Ptr()})
			continue
		}
		js, d := config.DecodePluginConfig(b, p.Info().Config)
		diags = append(diags, d...)
		ps.configs[p] = js
		switch b.Kind {
		case sdk.KindCapture:
			ps.captures = append(ps.captures, p)
			var c struct {
				Interface string `json:"interface"`
			}
			if json.Unmarshal(js, &c) == nil && c.Interface != "" {
				ps.live = true
			}
		case sdk.KindDetector:
			ps.detectors = append(ps.detectors, p)
		case sdk.KindSink:
			ps.sinks = append(ps.sinks, p)
		}
	}
	if diags.HasErrors() {
		ps.stop()
	}
	return ps, diags
}

// configureProcessors sends detectors and sinks their config blocks. It
// comes first: what they want (a sink's records and frames, a detector's
// features and labels) may depend on their config, and the pipeline is
// built from their answer after it.
func (ps *plugins) configureProcessors(ctx context.Context, cfg *config.Config) error {
	for _, p := range append(append([]*host.Plugin(nil), ps.detectors...), ps.sinks...) {
		if err := p.Configure(ctx, sdk.Config{JSON: ps.configs[p], Runtime: sdk.Runtime{Sensor: cfg.Sensor.Name}}); err != nil {
			return err
		}
	}
	return nil
}

// configureCaptures sends capture plugins their config blocks, with raw
// frames included only when some sink asked for them.
func (ps *plugins) configureCaptures(ctx context.Context, cfg *config.Config, includeFrames bool) error {
	for _, p := range ps.captures {
		rt := sdk.Runtime{Sensor: cfg.Sensor.Name, BatchSize: cfg.Pipeline.BatchSize, FlushInterval: cfg.Pipeline.FlushInterval, IncludeFrames: includeFrames}
		if err := p.Configure(ctx, sdk.Config{JSON: ps.configs[p], Runtime: rt}); err != nil {
			return err
		}
	}
	return nil
}
