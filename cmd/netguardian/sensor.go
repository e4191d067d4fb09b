package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

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

// loadConfig reads and validates path, printing diagnostics to stderr,
// except the warnings whose summaries are in quiet.
func loadConfig(path string, quiet ...string) (*config.Config, error) {
	cfg, diags := config.Load(path)
	if cfg != nil && !diags.HasErrors() {
		for _, d := range config.Validate(cfg) {
			if d.Severity != hcl.DiagWarning || !slices.Contains(quiet, d.Summary) {
				diags = append(diags, d)
			}
		}
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
	return newLeveledLogger(cfg, w, cfg.Sensor.LogLevel)
}

// newLeveledLogger is newLogger with a level that may change while it is
// in use (a *slog.LevelVar: a reload applies sensor.log_level).
func newLeveledLogger(cfg *config.Config, w io.Writer, level slog.Leveler) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Sensor.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// plugins are the started plugins of a config, by kind, with their decoded
// config blocks and what each was started from. A reload builds a new
// value rather than changing one in use.
type plugins struct {
	captures, detectors, sinks []*host.Plugin
	configs                    map[*host.Plugin][]byte
	sources                    map[*host.Plugin]pluginSource
	// live is set when a capture reads an interface rather than files:
	// windows then also close by wall clock when traffic stops.
	live bool
	// frames is whether captures were told to include raw frames.
	frames bool

	mu      sync.Mutex
	watches map[*host.Plugin]context.CancelFunc
}

// pluginSource is what a plugin process was started from: a reload
// restarts a plugin when one of these, or its decoded config, changed.
type pluginSource struct {
	path   string // the resolved binary
	sha256 string
	env    config.Env
}

// changes names what differs from o, for logs: never the values (env may
// hold secrets).
func (s pluginSource) changes(o pluginSource) []string {
	var out []string
	if s.path != o.path {
		out = append(out, "plugin")
	}
	if s.sha256 != o.sha256 {
		out = append(out, "sha256")
	}
	if !s.env.Equal(o.env) {
		out = append(out, "env")
	}
	return out
}

func newPlugins() *plugins {
	return &plugins{configs: map[*host.Plugin][]byte{}, sources: map[*host.Plugin]pluginSource{}, watches: map[*host.Plugin]context.CancelFunc{}}
}

// add files a started plugin under its kind.
func (ps *plugins) add(p *host.Plugin, js []byte, src pluginSource) {
	ps.configs[p], ps.sources[p] = js, src
	switch p.Kind() {
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

// find returns the plugin of the block `kind "name"`, or nil.
func (ps *plugins) find(kind sdk.Kind, name string) *host.Plugin {
	for _, p := range ps.all() {
		if p.Kind() == kind && p.Name() == name {
			return p
		}
	}
	return nil
}

func (ps *plugins) all() []*host.Plugin {
	out := append([]*host.Plugin(nil), ps.captures...)
	out = append(out, ps.detectors...)
	return append(out, ps.sinks...)
}

// watch restarts p when its process dies, until ctx ends or p is stopped.
func (ps *plugins) watch(ctx context.Context, p *host.Plugin) {
	ctx, cancel := context.WithCancel(ctx)
	ps.mu.Lock()
	ps.watches[p] = cancel
	ps.mu.Unlock()
	go p.Watch(ctx, 2*time.Second)
}

// stopPlugin ends p's watcher, then its process.
func (ps *plugins) stopPlugin(p *host.Plugin) {
	ps.mu.Lock()
	cancel := ps.watches[p]
	delete(ps.watches, p)
	ps.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	p.Stop()
}

// stop ends every plugin at once: the pipeline has drained, and each
// process takes a few milliseconds to wind down.
func (ps *plugins) stop() {
	var wg sync.WaitGroup
	for _, p := range ps.all() {
		wg.Go(func() { ps.stopPlugin(p) })
	}
	wg.Wait()
}

// pluginEnv is what every plugin process gets as its environment: not the
// core's (which may hold secrets for other plugins), only PATH so it can
// find helper tools.
func pluginEnv() []string {
	return []string{"PATH=" + os.Getenv("PATH")}
}

// blockEnv is a block's plugin environment: pluginEnv and the block's env
// attribute, which may set PATH too.
func blockEnv(env config.Env) []string {
	var out []string
	if _, ok := env["PATH"]; !ok {
		out = pluginEnv()
	}
	return append(out, env.Environ()...)
}

// startBlock resolves and starts the plugin of block b. The plugin is nil
// when it could not start; the diagnostic points at the block.
func startBlock(ctx context.Context, b config.PluginBlock, pluginDir string, log *slog.Logger) (*host.Plugin, pluginSource, hcl.Diagnostics) {
	path, err := host.Resolve(b.Plugin, pluginDir)
	if err != nil {
		return nil, pluginSource{}, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Plugin not found",
			Detail: fmt.Sprintf("%s %q: %s.", b.Kind, b.Name, err), Subject: b.PluginRange.Ptr()}}
	}
	src := pluginSource{path: path, sha256: b.SHA256, env: b.Env}
	p, err := host.Start(ctx, host.Spec{Name: b.Name, Kind: b.Kind, Path: path, SHA256: b.SHA256, Env: blockEnv(b.Env)}, log)
	if err != nil {
		return nil, src, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Plugin failed to start",
			Detail: err.Error(), Subject: b.PluginRange.Ptr()}}
	}
	return p, src, nil
}

// startPlugins starts every enabled plugin block and decodes its config
// block against the schema the plugin describes. Problems are diagnostics
// pointing at the block. The plugins start at once: each takes ~0.1 s
// (checksum, process start, mutual TLS, Describe), which in sequence was a
// tenth of analyzing a million packets.
func startPlugins(ctx context.Context, cfg *config.Config, log *slog.Logger) (*plugins, hcl.Diagnostics) {
	type started struct {
		p     *host.Plugin
		src   pluginSource
		diags hcl.Diagnostics
	}
	blocks := cfg.Plugins()
	results := make([]started, len(blocks))
	var wg sync.WaitGroup
	for i, b := range blocks {
		wg.Go(func() {
			r := &results[i]
			r.p, r.src, r.diags = startBlock(ctx, b, cfg.Sensor.PluginDir, log)
		})
	}
	wg.Wait()
	ps := newPlugins()
	var diags hcl.Diagnostics
	for i, r := range results { // in the config's order
		diags = append(diags, r.diags...)
		if r.p == nil {
			continue
		}
		js, d := config.DecodePluginConfig(blocks[i], r.p.Info().Config)
		diags = append(diags, d...)
		ps.add(r.p, js, r.src)
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
	return ps.configureProcessorsOf(ctx, cfg, append(append([]*host.Plugin(nil), ps.detectors...), ps.sinks...))
}

// configureProcessorsOf configures the plugins at once (a model to load, a
// database to migrate) and returns the first error in list order.
func (ps *plugins) configureProcessorsOf(ctx context.Context, cfg *config.Config, list []*host.Plugin) error {
	errs := make([]error, len(list))
	var wg sync.WaitGroup
	for i, p := range list {
		wg.Go(func() {
			errs[i] = p.Configure(ctx, sdk.Config{JSON: ps.configs[p], Runtime: sdk.Runtime{Sensor: cfg.Sensor.Name}})
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// configureCaptures sends capture plugins their config blocks, with raw
// frames included only when some sink asked for them.
func (ps *plugins) configureCaptures(ctx context.Context, cfg *config.Config, includeFrames bool) error {
	return ps.configureCapturesOf(ctx, cfg, includeFrames, ps.captures)
}

func (ps *plugins) configureCapturesOf(ctx context.Context, cfg *config.Config, includeFrames bool, list []*host.Plugin) error {
	ps.frames = includeFrames
	for _, p := range list {
		rt := sdk.Runtime{Sensor: cfg.Sensor.Name, BatchSize: cfg.Pipeline.BatchSize, FlushInterval: cfg.Pipeline.FlushInterval, IncludeFrames: includeFrames}
		if err := p.Configure(ctx, sdk.Config{JSON: ps.configs[p], Runtime: rt}); err != nil {
			return err
		}
	}
	return nil
}
