// Package pipeline wires the stages of the sensor: capture plugins feed
// the window aggregator; closed windows go to the detectors that subscribed
// to their size, to the recorder (the in-memory store) and to sinks;
// alerts go to the recorder, to sinks and to listeners such as the
// WebSocket hub.
//
// Queues between stages are bounded. Under overload only raw packets bound
// for sinks are dropped (when allowed), and every drop is counted per
// stage; features and alerts are never dropped: a full queue blocks the
// stage before it (back-pressure).
package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netguardian/netguardian/core/host"
	"github.com/netguardian/netguardian/core/spool"
	"github.com/netguardian/netguardian/core/window"
	"github.com/netguardian/netguardian/sdk"
)

// Recorder keeps features and alerts for the API (the in-memory store).
type Recorder interface {
	AppendFeatures(ctx context.Context, b *sdk.FeatureBatch) error
	AppendAlerts(ctx context.Context, alerts []sdk.Alert) error
}

// Config wires a pipeline.
type Config struct {
	Sensor    string
	Captures  []*host.Plugin
	Detectors []*host.Plugin
	Sinks     []*host.Plugin
	Window    window.Options
	// QueueDepth is the number of batches each queue holds (default 64).
	QueueDepth int
	// DropRawPackets lets raw-packet batches for sinks be dropped (and
	// counted) when a sink's queue is full, instead of blocking capture.
	DropRawPackets bool
	// SpoolDir, when set, puts each sink's queue on disk in SpoolDir/NAME:
	// batches survive a sink outage and a restart of the core, and are
	// deleted only once the sink acknowledged them. Empty keeps them in memory.
	SpoolDir string
	// SpoolMaxBytes bounds each sink's spool (default 1 GiB).
	SpoolMaxBytes int64
	// DetectTimeout bounds one Detect call (default 10s).
	DetectTimeout time.Duration
	// Live makes the aggregator close idle windows by wall clock.
	Live     bool
	Recorder Recorder
	// OnAlert is called for every alert after it is recorded.
	OnAlert func(sdk.Alert)
	// OnPackets is called for every packet batch the aggregator takes (live counters).
	OnPackets func(*sdk.PacketBatch)
	Log       *slog.Logger
}

// Pipeline runs the stages. Create it with New, then Run.
type Pipeline struct {
	cfg   Config
	log   *slog.Logger
	agg   *window.Aggregator
	stats counters

	packets   chan *sdk.PacketBatch
	detectors []*detectorStage
	sinks     []*sinkStage
	runID     string
	alertSeq  atomic.Uint64
	// ctx is the downstream stages' context while Run runs (emitWindows
	// has no context of its own: the aggregator calls it).
	ctx context.Context
}

type detectorStage struct {
	p       *host.Plugin
	windows map[time.Duration]bool
	names   []string
	in      chan closedWindows
	calls   atomic.Uint64
	alerts  atomic.Uint64
	fails   atomic.Uint64
	latency *latencyHist // one Detect call
	// closeToAlert runs from the windows closing to the detector's answer
	// being recorded (queueing included): how stale an alert is.
	closeToAlert *latencyHist
}

// closedWindows is a detector's input: windows of one size and when they closed.
type closedWindows struct {
	batch    *sdk.FeatureBatch
	closedAt time.Time
}

type sinkStage struct {
	p        *host.Plugin
	w        *host.SinkWriter
	packets  bool
	features bool
	alerts   bool
	frames   bool
	spool    *spool.Spool  // nil: batches queue in memory
	dropped  atomic.Uint64 // raw packet batches dropped
	droppedP atomic.Uint64 // raw packets dropped
	latency  *latencyHist  // send-to-acknowledgement time of batches
}

// New checks the wiring and builds the stages.
func New(cfg Config) (*Pipeline, error) {
	if cfg.QueueDepth <= 0 {
		cfg.QueueDepth = 64
	}
	if cfg.DetectTimeout <= 0 {
		cfg.DetectTimeout = 10 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	p := &Pipeline{cfg: cfg, log: cfg.Log, packets: make(chan *sdk.PacketBatch, cfg.QueueDepth), runID: newRunID()}
	for _, d := range cfg.Detectors {
		info := d.Info()
		for _, f := range info.Features {
			if !sdk.KnownFeature(f) {
				return nil, fmt.Errorf("detector %q asks for unknown feature %q (feature schema version %d knows: %v)", d.Name(), f, sdk.FeatureSchemaVersion, sdk.Features)
			}
		}
		st := &detectorStage{p: d, windows: map[time.Duration]bool{}, names: info.Features, in: make(chan closedWindows, cfg.QueueDepth), latency: newLatencyHist(), closeToAlert: newLatencyHist()}
		if len(st.names) == 0 {
			st.names = sdk.Features
		}
		ws := info.Windows
		if len(ws) == 0 {
			ws = []time.Duration{30 * time.Second, 180 * time.Second}
		}
		for _, w := range ws {
			if !slices.Contains(sdk.WindowSizes, w) {
				return nil, fmt.Errorf("detector %q subscribes to %s windows; the core computes %v", d.Name(), w, sdk.WindowSizes)
			}
			st.windows[w] = true
		}
		p.detectors = append(p.detectors, st)
	}
	for _, s := range cfg.Sinks {
		info := s.Info()
		st := &sinkStage{p: s, frames: info.WantsFrames, latency: newLatencyHist()}
		if cfg.SpoolDir != "" {
			sp, rec, err := spool.Open(spool.Options{Dir: filepath.Join(cfg.SpoolDir, s.Name()), MaxBytes: cfg.SpoolMaxBytes})
			if err != nil {
				p.closeSpools()
				return nil, fmt.Errorf("sink %q: %w", s.Name(), err)
			}
			if rec.Clean() {
				p.log.Info("sink spool opened", "sink", s.Name(), "recovered", rec.String())
			} else {
				p.log.Warn("sink spool recovered with losses", "sink", s.Name(), "recovery", rec.String())
			}
			st.spool = sp
			st.w = s.NewSpooledSinkWriter(sp, 8, cfg.DropRawPackets)
		} else {
			st.w = s.NewSinkWriter(cfg.QueueDepth, 8)
		}
		st.w.OnAck = st.latency.observe
		for _, r := range info.Records {
			switch r {
			case sdk.RecordPackets:
				st.packets = true
			case sdk.RecordFeatures:
				st.features = true
			case sdk.RecordAlerts:
				st.alerts = true
			}
		}
		p.sinks = append(p.sinks, st)
	}
	agg, err := window.New(cfg.Window, p.emitWindows)
	if err != nil {
		p.closeSpools()
		return nil, fmt.Errorf("windows: %w", err)
	}
	p.agg = agg
	return p, nil
}

// WantsFrames reports whether some sink asked for raw frames, which is
// what tells capture plugins to include them.
func (p *Pipeline) WantsFrames() bool {
	for _, s := range p.sinks {
		if s.packets && s.frames {
			return true
		}
	}
	return false
}

func (p *Pipeline) closeSpools() {
	for _, s := range p.sinks {
		if s.spool != nil {
			if err := s.spool.Close(); err != nil {
				p.log.Warn("close sink spool", "sink", s.p.Name(), "error", err)
			}
		}
	}
}

func newRunID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Run starts every stage and returns when the captures have ended and
// everything downstream is drained (the order of a clean shutdown), or
// when ctx ends. After ctx ends it still drains for up to drainTimeout:
// capture stops, windows flush as partial, detectors finish, sinks flush.
func (p *Pipeline) Run(ctx context.Context, drainTimeout time.Duration) error {
	// Downstream stages outlive ctx so a shutdown can drain them.
	drainCtx, cancelDrain := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelDrain()
	stop := context.AfterFunc(ctx, func() {
		time.AfterFunc(drainTimeout, cancelDrain)
	})
	defer stop()
	p.ctx = drainCtx
	defer p.closeSpools()

	var sinkWG sync.WaitGroup
	sinkErrs := make([]error, len(p.sinks))
	for i, s := range p.sinks {
		sinkWG.Add(1)
		go func() {
			defer sinkWG.Done()
			sinkErrs[i] = s.w.Run(drainCtx)
		}()
	}
	var detWG sync.WaitGroup
	for _, d := range p.detectors {
		detWG.Add(1)
		go func() {
			defer detWG.Done()
			p.runDetector(drainCtx, d)
		}()
	}

	aggDone := make(chan error, 1)
	go func() { aggDone <- p.runAggregator(drainCtx) }()

	var captureErr error
	if len(p.cfg.Captures) == 0 {
		// A central view: no capture, only sinks serving queries. It runs
		// until it is stopped.
		<-ctx.Done()
	} else {
		captureErr = p.runCaptures(ctx)
	}
	close(p.packets)
	aggErr := <-aggDone
	for _, d := range p.detectors {
		close(d.in)
	}
	detWG.Wait()
	for _, s := range p.sinks {
		s.w.Close()
	}
	sinkWG.Wait()
	if errors.Is(captureErr, context.Canceled) && ctx.Err() != nil {
		captureErr = nil // a requested stop, not a failure
	}
	var unacked int
	for _, s := range p.sinks {
		unacked += len(s.w.Unacked())
	}
	for _, s := range p.sinks {
		if s.spool != nil {
			unacked += s.w.Queued()
		}
	}
	if unacked > 0 {
		p.log.Warn("shutdown left batches unacknowledged by sinks (spooled ones are sent at the next start)", "batches", unacked)
	}
	return errors.Join(captureErr, aggErr, errors.Join(filterCanceled(sinkErrs)...))
}

func filterCanceled(errs []error) []error {
	var out []error
	for _, e := range errs {
		if e != nil && !errors.Is(e, context.Canceled) {
			out = append(out, e)
		}
	}
	return out
}

func (p *Pipeline) runCaptures(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, len(p.cfg.Captures))
	for i, c := range p.cfg.Captures {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.RunCapture(ctx, func(b *sdk.PacketBatch) error { return p.takePackets(ctx, c, b) }, func(l host.CaptureLoss) {
				p.stats.captureLost.Add(l.To - l.From)
				p.log.Warn("capture lost packets while restarting", "capture", c.Name(), "from", l.From, "to", l.To)
			})
			if errs[i] != nil && !errors.Is(errs[i], context.Canceled) {
				p.log.Error("capture ended with an error", "capture", c.Name(), "error", errs[i])
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// takePackets hands a batch to the aggregator (blocking: back-pressure on
// the capture) and to sinks that store raw packets (dropping, counted,
// when they cannot keep up and that is allowed).
func (p *Pipeline) takePackets(ctx context.Context, c *host.Plugin, b *sdk.PacketBatch) error {
	p.stats.captureCounters.Store(c.Name(), b.Counters)
	for _, s := range p.sinks {
		if !s.packets {
			continue
		}
		rec := sdk.Records{Packets: b}
		if s.spool != nil {
			switch err := s.w.Write(ctx, rec); {
			case errors.Is(err, host.ErrSpoolFull):
				s.dropped.Add(1)
				s.droppedP.Add(uint64(b.Len()))
			case err != nil:
				return err
			}
			continue
		}
		if !p.cfg.DropRawPackets {
			if err := s.w.Write(ctx, rec); err != nil {
				return err
			}
			continue
		}
		if s.w.Queued() >= p.cfg.QueueDepth {
			s.dropped.Add(1)
			s.droppedP.Add(uint64(b.Len()))
			continue
		}
		if err := s.w.Write(ctx, rec); err != nil {
			return err
		}
	}
	select {
	case p.packets <- b:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *Pipeline) runAggregator(ctx context.Context) error {
	var tick <-chan time.Time
	if p.cfg.Live {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case b, ok := <-p.packets:
			if !ok {
				return p.agg.Close()
			}
			p.stats.packets.Add(uint64(b.Len()))
			var bytes uint64
			for _, l := range b.Lengths {
				bytes += uint64(l)
			}
			p.stats.bytes.Add(bytes)
			p.stats.batches.Add(1)
			if p.cfg.OnPackets != nil {
				p.cfg.OnPackets(b)
			}
			if err := p.agg.Add(b); err != nil {
				return err
			}
		case now := <-tick:
			if err := p.agg.Tick(now); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// emitWindows is the aggregator's output: closed windows of one size.
func (p *Pipeline) emitWindows(b *sdk.FeatureBatch) error {
	if len(b.Rows) == 0 {
		return nil
	}
	ctx := p.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	b.Sensor = p.cfg.Sensor
	p.stats.windows(b.Window).Add(uint64(len(b.Rows)))
	if p.cfg.Recorder != nil {
		if err := p.cfg.Recorder.AppendFeatures(ctx, b); err != nil {
			return fmt.Errorf("record features: %w", err)
		}
	}
	for _, s := range p.sinks {
		if s.features {
			if err := s.w.Write(ctx, sdk.Records{Features: b}); err != nil {
				return err
			}
		}
	}
	closed := time.Now()
	for _, d := range p.detectors {
		if d.windows[b.Window] {
			d.in <- closedWindows{project(b, d.names), closed}
		}
	}
	return nil
}

// project returns b with only the named features, in that order: what a
// detector asked for, whatever the feature set grows into.
func project(b *sdk.FeatureBatch, names []string) *sdk.FeatureBatch {
	if slices.Equal(b.Names, names) {
		return b
	}
	idx := make([]int, len(names))
	for i, n := range names {
		idx[i] = b.Index(n)
	}
	out := &sdk.FeatureBatch{Sensor: b.Sensor, Window: b.Window, SchemaVersion: b.SchemaVersion, Names: names, Rows: make([]sdk.FeatureRow, len(b.Rows))}
	values := make([]float64, len(b.Rows)*len(names))
	for r, row := range b.Rows {
		v := values[r*len(names) : (r+1)*len(names)]
		for i, j := range idx {
			v[i] = row.Values[j]
		}
		out.Rows[r] = sdk.FeatureRow{Src: row.Src, Start: row.Start, End: row.End, Flags: row.Flags, Values: v}
	}
	return out
}

func (p *Pipeline) runDetector(ctx context.Context, d *detectorStage) {
	for w := range d.in {
		b := w.batch
		start := time.Now()
		alerts, err := d.p.Detect(ctx, b, p.cfg.DetectTimeout)
		d.latency.observe(time.Since(start))
		d.calls.Add(1)
		if err != nil {
			d.fails.Add(1)
			p.log.Error("detector failed on a batch; its windows still reach the sinks", "detector", d.p.Name(), "window", b.Window, "rows", len(b.Rows), "error", err)
			continue
		}
		if len(alerts) == 0 {
			continue
		}
		now := time.Now().UTC()
		for i := range alerts {
			a := &alerts[i]
			row := b.Rows[a.Row]
			a.ID = fmt.Sprintf("%s-%d", p.runID, p.alertSeq.Add(1))
			a.Sensor, a.Detector = p.cfg.Sensor, d.p.Name()
			a.Src, a.Window, a.Start, a.End, a.Time = row.Src, b.Window, row.Start, row.End, now
			if a.Severity == "" {
				a.Severity = sdk.SeverityMedium
			}
		}
		d.alerts.Add(uint64(len(alerts)))
		p.stats.alerts.Add(uint64(len(alerts)))
		p.recordAlerts(ctx, alerts)
		d.closeToAlert.observe(time.Since(w.closedAt))
	}
}

func (p *Pipeline) recordAlerts(ctx context.Context, alerts []sdk.Alert) {
	if p.cfg.Recorder != nil {
		if err := p.cfg.Recorder.AppendAlerts(ctx, alerts); err != nil {
			p.log.Error("record alerts", "error", err)
		}
	}
	for _, s := range p.sinks {
		if s.alerts {
			if err := s.w.Write(ctx, sdk.Records{Alerts: alerts}); err != nil {
				p.log.Error("queue alerts for sink", "sink", s.p.Name(), "error", err)
			}
		}
	}
	if p.cfg.OnAlert != nil {
		for _, a := range alerts {
			p.cfg.OnAlert(a)
		}
	}
}
