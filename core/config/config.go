package config

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/netguardian/netguardian/sdk"
)

// Defaults of the core's attributes; docs/configuration.md lists them too.
const (
	DefaultSensorName         = "netguardian" // used only when the host name is unknown
	DefaultPluginDir          = "bin/plugins"
	DefaultLogFormat          = "text"
	DefaultSpoolDir           = "var/spool"
	DefaultSpoolMaxMiB        = 1024
	DefaultListen             = "127.0.0.1:5000"
	DefaultSnapshotInterval   = 2 * time.Second
	DefaultActiveFor          = 5 * time.Minute
	DefaultLateness           = 2 * time.Second
	DefaultIdleTimeout        = 10 * time.Second
	DefaultMaxSources         = 200000
	DefaultDistinctExactLimit = 1024
	// DefaultBatchSize: per-batch costs (gRPC messages, wake-ups, syscalls)
	// made 1024-packet batches ~15 % slower end to end (docs/benchmarks.md).
	DefaultBatchSize     = 8192
	DefaultFlushInterval = 100 * time.Millisecond
	DefaultQueueDepth    = 64
)

// Config is a decoded netguardian.hcl.
type Config struct {
	// Path is the file name the config was loaded from, as given.
	Path string

	Sensor      SensorConfig
	API         APIConfig
	Aggregation AggregationConfig
	Pipeline    PipelineConfig

	// Plugin blocks in file order, disabled ones included.
	Captures  []PluginBlock
	Detectors []PluginBlock
	Sinks     []PluginBlock

	files  map[string]*hcl.File
	ranges map[string]hcl.Range // "api.listen" -> value range, "api" -> block header
}

// SensorConfig is the sensor { } block.
type SensorConfig struct {
	// Name identifies this sensor in stored records. Default: the host name.
	Name string
	// PluginDir is where plugins named without a '/' are found. A relative
	// path is relative to the working directory, not to the config file.
	PluginDir string
	// LogLevel is parsed from "debug", "info", "warn" or "error".
	LogLevel slog.Level
	// LogFormat is "text" or "json".
	LogFormat string
	// SpoolDir is where data waiting for a slow sink may be kept.
	SpoolDir string
	// SpoolMaxMiB bounds each sink's spool, in MiB.
	SpoolMaxMiB int
}

// APIConfig is the api { } block. Its String, GoString and LogValue methods
// redact the token, so printing or logging it is safe.
type APIConfig struct {
	// Listen is host:port.
	Listen string
	// Token is the bearer token clients must present. It is decoded here;
	// Validate requires it for non-loopback addresses, the API enforces it.
	Token string `json:"-"`
	// AllowedOrigins are the origins (scheme://host[:port]) whose pages may
	// open the WebSocket, besides the API's own origin.
	AllowedOrigins []string
	// SnapshotInterval is how often the dashboard WebSocket gets a snapshot.
	SnapshotInterval time.Duration
	// ActiveFor is how long after its window ended an alert stays active.
	ActiveFor time.Duration
}

// AggregationConfig is the aggregation { } block.
type AggregationConfig struct {
	// Lateness is how far behind the newest packet time the watermark runs.
	Lateness time.Duration
	// IdleTimeout closes windows when no packet arrived for this long (live
	// capture only).
	IdleTimeout time.Duration
	// MaxSources caps the number of source addresses with open windows.
	MaxSources int
	// DistinctExactLimit is how many distinct values a window counts
	// exactly before switching to a sketch.
	DistinctExactLimit int
}

// PipelineConfig is the pipeline { } block.
type PipelineConfig struct {
	BatchSize     int
	FlushInterval time.Duration
	// QueueDepth is the number of batches each queue between stages holds.
	QueueDepth int
	// DropRawPackets lets the pipeline drop (and count) raw packets bound
	// for sinks under overload instead of slowing capture down.
	DropRawPackets bool
}

// PluginBlock is one capture, detector or sink block.
type PluginBlock struct {
	Kind sdk.Kind
	// Name is the block's label, unique among blocks of the same kind.
	Name string
	// Plugin is a name to look up in sensor.plugin_dir, or a path if it
	// contains a '/', as written.
	Plugin string
	// SHA256 is the expected digest of the plugin binary in lower-case hex,
	// or "" when not pinned.
	SHA256  string
	Enabled bool
	// Env is what the plugin process gets as environment besides PATH
	// (plugins never inherit the core's); nil when the block sets none.
	Env Env
	// Body is the undecoded config { } block (an empty body when absent);
	// see DecodePluginConfig.
	Body        hcl.Body
	DeclRange   hcl.Range
	PluginRange hcl.Range

	ctx         *hcl.EvalContext // functions with the right base directory
	configRange hcl.Range        // the config block's header; zero when absent
}

// Default returns the configuration an empty file decodes to.
func Default() *Config {
	name, err := os.Hostname()
	if err != nil || name == "" {
		name = DefaultSensorName
	}
	return &Config{
		Sensor: SensorConfig{
			Name:        name,
			PluginDir:   DefaultPluginDir,
			LogLevel:    slog.LevelInfo,
			LogFormat:   DefaultLogFormat,
			SpoolDir:    DefaultSpoolDir,
			SpoolMaxMiB: DefaultSpoolMaxMiB,
		},
		API: APIConfig{
			Listen:           DefaultListen,
			SnapshotInterval: DefaultSnapshotInterval,
			ActiveFor:        DefaultActiveFor,
		},
		Aggregation: AggregationConfig{
			Lateness:           DefaultLateness,
			IdleTimeout:        DefaultIdleTimeout,
			MaxSources:         DefaultMaxSources,
			DistinctExactLimit: DefaultDistinctExactLimit,
		},
		Pipeline: PipelineConfig{
			BatchSize:      DefaultBatchSize,
			FlushInterval:  DefaultFlushInterval,
			QueueDepth:     DefaultQueueDepth,
			DropRawPackets: true,
		},
		files:  map[string]*hcl.File{},
		ranges: map[string]hcl.Range{},
	}
}

// Load reads and parses the config file at path. See Parse.
func Load(path string) (*Config, hcl.Diagnostics) {
	src, err := os.ReadFile(path)
	if err != nil {
		c := Default()
		c.Path = path
		return c, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Failed to read config file",
			Detail:   fmt.Sprintf("Cannot read %s: %v.", path, err),
		}}
	}
	return Parse(path, src)
}

// Parse decodes a config file's contents; filename names it in diagnostics
// and its directory is file()'s base. Each attribute is checked on its own
// (types, ranges, enumerations); Validate adds the cross-field checks.
//
// The returned Config is never nil, so its Files can print the
// diagnostics, but its content is only meaningful when diags has no errors.
func Parse(filename string, src []byte) (*Config, hcl.Diagnostics) {
	c := Default()
	c.Path = filename
	f, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if f != nil {
		c.files[filename] = f
	}
	if diags.HasErrors() {
		return c, diags
	}
	ctx := evalContext(filepath.Dir(filename))
	diags = append(diags, c.decode(f.Body, ctx)...)
	sortDiagnostics(diags)
	return c, diags
}

// sortDiagnostics orders diagnostics by position, so they read top to
// bottom like the file; those without a position come first.
func sortDiagnostics(diags hcl.Diagnostics) {
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i].Subject, diags[j].Subject
		switch {
		case a == nil || b == nil:
			return a == nil && b != nil
		case a.Filename != b.Filename:
			return a.Filename < b.Filename
		}
		return a.Start.Byte < b.Start.Byte
	})
}

// Files returns the parsed files by name, for WriteDiagnostics.
func (c *Config) Files() map[string]*hcl.File {
	return c.files
}

// Plugins returns the enabled plugin blocks: captures, then detectors, then
// sinks, each in file order.
func (c *Config) Plugins() []PluginBlock {
	var out []PluginBlock
	for _, list := range [][]PluginBlock{c.Captures, c.Detectors, c.Sinks} {
		for _, b := range list {
			if b.Enabled {
				out = append(out, b)
			}
		}
	}
	return out
}

// AttrRange returns where a core attribute ("api.listen") was written, for
// diagnostics about it. When it was not written it returns its block's
// header, or the start of the file when the block is absent too.
func (c *Config) AttrRange(path string) hcl.Range {
	if r, ok := c.ranges[path]; ok {
		return r
	}
	if block, _, ok := strings.Cut(path, "."); ok {
		if r, ok := c.ranges[block]; ok {
			return r
		}
	}
	return hcl.Range{Filename: c.Path, Start: hcl.InitialPos, End: hcl.InitialPos}
}

// String describes the API settings with the token redacted.
func (a APIConfig) String() string {
	return fmt.Sprintf("{Listen:%s Token:%s AllowedOrigins:%v SnapshotInterval:%s ActiveFor:%s}",
		a.Listen, redact(a.Token), a.AllowedOrigins, a.SnapshotInterval, a.ActiveFor)
}

// GoString is String for %#v, which would otherwise print the token.
func (a APIConfig) GoString() string {
	return "config.APIConfig" + a.String()
}

// LogValue implements slog.LogValuer with the token redacted.
func (a APIConfig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("listen", a.Listen),
		slog.String("token", redact(a.Token)),
		slog.Any("allowed_origins", a.AllowedOrigins),
		slog.Duration("snapshot_interval", a.SnapshotInterval),
		slog.Duration("active_for", a.ActiveFor),
	)
}

// redact hides a secret but still shows whether one is set.
func redact(s string) string {
	if s == "" {
		return ""
	}
	return "REDACTED"
}

// CoreSettings returns every attribute of the core's blocks by its
// qualified name ("api.listen") with its decoded value, defaults
// included, so that two configs can be compared setting by setting (a
// reload does). Some values are secrets (api.token): compare them, never
// print them.
func (c *Config) CoreSettings() map[string]any {
	return map[string]any{
		"sensor.name":                      c.Sensor.Name,
		"sensor.plugin_dir":                c.Sensor.PluginDir,
		"sensor.log_level":                 c.Sensor.LogLevel,
		"sensor.log_format":                c.Sensor.LogFormat,
		"sensor.spool_dir":                 c.Sensor.SpoolDir,
		"sensor.spool_max_mib":             c.Sensor.SpoolMaxMiB,
		"api.listen":                       c.API.Listen,
		"api.token":                        c.API.Token,
		"api.allowed_origins":              slices.Clone(c.API.AllowedOrigins),
		"api.snapshot_interval":            c.API.SnapshotInterval,
		"api.active_for":                   c.API.ActiveFor,
		"aggregation.lateness":             c.Aggregation.Lateness,
		"aggregation.idle_timeout":         c.Aggregation.IdleTimeout,
		"aggregation.max_sources":          c.Aggregation.MaxSources,
		"aggregation.distinct_exact_limit": c.Aggregation.DistinctExactLimit,
		"pipeline.batch_size":              c.Pipeline.BatchSize,
		"pipeline.flush_interval":          c.Pipeline.FlushInterval,
		"pipeline.queue_depth":             c.Pipeline.QueueDepth,
		"pipeline.drop_raw_packets":        c.Pipeline.DropRawPackets,
	}
}
