package sdk

import (
	"context"
	"time"
)

// Kind says what a plugin does in the pipeline.
type Kind string

const (
	KindCapture  Kind = "capture"
	KindDetector Kind = "detector"
	KindSink     Kind = "sink"
)

// RecordKind names a kind of record a sink may take.
type RecordKind string

const (
	RecordPackets  RecordKind = "packets"
	RecordFeatures RecordKind = "features"
	RecordAlerts   RecordKind = "alerts"
)

// Info is what a plugin tells the core about itself (Describe).
type Info struct {
	Name    string
	Version string
	Kind    Kind
	// Config is the schema of the plugin's `config { }` block. The core
	// decodes the block against it, so mistakes are reported with their
	// file:line:col before the plugin runs.
	Config Schema

	// Detectors: the features they read (in the order Detect receives them),
	// the window sizes they score, and the labels they may raise.
	Features []string
	Windows  []time.Duration
	Labels   []string

	// Sinks: the records they take, whether packet batches must carry raw
	// frames, and whether the sink also answers queries (implements Store).
	Records     []RecordKind
	WantsFrames bool

	// Filled in by the SDK.
	FeatureSchemaVersion uint32
	SDKVersion           string
	ServesStore          bool
}

// Runtime holds the settings the core passes along with a plugin's config.
type Runtime struct {
	// Sensor is the sensor name from netguardian.hcl.
	Sensor string
	// Capture plugins: batch size, longest wait for a partial batch, and
	// whether raw frames (cut to FrameSnaplen bytes, 0 = whole) are wanted.
	BatchSize     int
	FlushInterval time.Duration
	IncludeFrames bool
	FrameSnaplen  int
}

// Plugin is what every plugin implements.
type Plugin interface {
	// Describe reports the plugin's name, kind, config schema and needs. It
	// is called before Configure, and again after it: the kind and schema
	// must not depend on configuration, but a detector's features, windows
	// and labels may (they are read from the second answer).
	Describe() Info
	// Configure receives the decoded config block. An error here stops the
	// sensor at start with the plugin's message.
	Configure(ctx context.Context, cfg Config) error
}

// Capture produces packets.
type Capture interface {
	Plugin
	// Capture writes packets to w until the input ends (return nil) or ctx
	// is done. from is the index of the first packet wanted: a replay
	// restarted after a crash resumes where the core stopped receiving.
	// Live sources ignore it.
	Capture(ctx context.Context, from uint64, w *PacketWriter) error
}

// Detector scores closed windows.
type Detector interface {
	Plugin
	// Detect scores every row of batch and returns alerts for the rows it
	// flags. Alert.Row names the row; the core fills in source, window and
	// times. Features arrive in the order Describe listed them.
	Detect(ctx context.Context, batch *FeatureBatch) ([]Alert, error)
}

// Sink stores records. A batch counts as delivered once Write returns nil;
// on error the core keeps the batch and sends it again later, so Write must
// be idempotent for a repeated Records.Seq.
type Sink interface {
	Plugin
	Write(ctx context.Context, rec Records) error
}

// Records is one batch for a sink: exactly one of its fields is set.
type Records struct {
	// Seq increases per sink; a batch re-sent after a failure keeps its Seq.
	Seq      uint64
	Packets  *PacketBatch
	Features *FeatureBatch
	Alerts   []Alert
}

// Statser is optionally implemented by plugins that report health and
// counters (decode errors, drops...). The core asks every few seconds and
// shows them in /api/health and /metrics.
type Statser interface {
	Stats() Stats
}

// Stats is a plugin's own view of its health. Message is shown in
// /api/health as it is: keep credentials out of it.
type Stats struct {
	Healthy  bool
	Message  string
	Counters map[string]uint64
	// Process is filled in by the SDK (a plugin leaves it zero): the
	// plugin process's Go runtime.
	Process ProcessStats
}

// ProcessStats describes a plugin process's Go runtime: what a leak of
// goroutines or memory shows in.
type ProcessStats struct {
	Goroutines uint64
	// HeapLiveBytes is the heap the last garbage collection found live.
	HeapLiveBytes uint64
	// RuntimeBytes is the memory the Go runtime holds from the OS (mapped
	// and not released): RSS without the binary's pages, roughly.
	RuntimeBytes uint64
	GCCycles     uint64
}
