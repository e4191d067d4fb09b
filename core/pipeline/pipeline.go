// Package pipeline wires the stages of the sensor: capture plugins feed
// the window aggregator; closed windows go to the detectors that subscribed
// to their size, to the recorder (the in-memory store) and to sinks;
// alerts go to the recorder, to sinks and to listeners such as the
// WebSocket hub.
//
// Queues between stages are bounded. Under overload only raw packets bound
// for sinks are dropped (when allowed), and every drop is counted per
// stage; features and alerts are never dropped: a full queue blocks the
// stage before it (back-pressure). A sink's spool admits raw packets only
// up to a high-water mark, so features and alerts always find room.
package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
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
	// aggStats is the aggregator's counters as its goroutine last
	// published them (after each batch, tick and the close): Stats reads
	// this, never the aggregator, which only its goroutine may touch.
	aggStats atomic.Pointer[window.Stats]

	packets chan queuedBatch
	// stages are the captures, detectors and sinks; a reload replaces
	// the set (see acquire).
	stages atomic.Pointer[stageSet]
	// spools are the sinks' disk queues by sink name, open for the whole
	// run (a sink replaced by a reload hands its spool on).
	spools map[string]*spool.Spool
	live   atomic.Bool
	// ctx is the downstream stages' context while Run runs (emitWindows
	// has no context of its own: the aggregator calls it).
	ctx context.Context

	// reloadMu orders reloads with each other and with the shutdown.
	reloadMu sync.Mutex
	stopping bool
	run      *runState
	started  chan struct{} // closed once Run has started the stages
}

type detectorStage struct {
	p       *host.Plugin
	windows map[time.Duration]bool
	names   []string
	in      chan closedWindows
	// retired is closed when the stage goes (reload, shutdown): it scores
	// what is queued and ends; done is closed when it has.
	retired, done chan struct{}
	ctx           context.Context
	cancel        context.CancelFunc
	calls         atomic.Uint64
	alerts        atomic.Uint64
	fails         atomic.Uint64
	latency       *latencyHist // one Detect call
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
	rawLimit int64         // the spool size raw packets may fill (rawHighWater of its bound)
	dropped  atomic.Uint64 // raw packet batches dropped
	droppedP atomic.Uint64 // raw packets dropped
	latency  *latencyHist  // send-to-acknowledgement time of batches
	// Feature and alert batches that found the spool full and waited;
	// spool writes that failed (disk errors, retried); batches spooled
	// past the bound at a drain timeout; batches lost (see keep).
	fullWaits, writeErrors, pastBound, lost atomic.Uint64

	// wctx bounds producers' writes; a reload that removes the sink
	// cancels it and closes retired, and producers then skip the stage.
	wctx    context.Context
	wcancel context.CancelFunc
	retired chan struct{}
	cancel  context.CancelFunc // stops the writer
	done    chan struct{}      // closed when the writer has stopped
	err     error              // the writer's, once done
}

// write queues rec for the sink; a sink a reload removed takes nothing
// more and is no error.
func (s *sinkStage) write(ctx context.Context, rec sdk.Records) error {
	select {
	case <-s.retired:
		return nil
	default:
	}
	err := s.w.Write(ctx, rec)
	if err != nil {
		select {
		case <-s.retired:
			return nil
		default:
		}
	}
	return err
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
	p := &Pipeline{cfg: cfg, log: cfg.Log, packets: make(chan queuedBatch, cfg.QueueDepth),
		spools: map[string]*spool.Spool{}, started: make(chan struct{})}
	set := &stageSet{captures: slices.Clone(cfg.Captures)}
	for _, d := range cfg.Detectors {
		st, err := p.newDetectorStage(d)
		if err != nil {
			return nil, err
		}
		set.detectors = append(set.detectors, st)
	}
	for _, s := range cfg.Sinks {
		st, _, err := p.newSinkStage(s)
		if err != nil {
			p.closeSpools()
			return nil, err
		}
		set.sinks = append(set.sinks, st)
	}
	p.stages.Store(set)
	p.live.Store(cfg.Live)
	agg, err := window.New(cfg.Window, p.emitWindows)
	if err != nil {
		p.closeSpools()
		return nil, fmt.Errorf("windows: %w", err)
	}
	p.agg = agg
	return p, nil
}

// spoolSegmentBytes is a sixteenth of the spool's bound, at most 64 MiB:
// space is freed a whole segment at a time, so a small spool made of one
// segment would free nothing until the sink acknowledged all of it.
func spoolSegmentBytes(maxBytes int64) int64 {
	if maxBytes <= 0 {
		return 0 // the spool's defaults
	}
	return min(max(maxBytes/16, 64<<10), 64<<20, maxBytes)
}

// WantsFrames reports whether some sink asked for raw frames, which is
// what tells capture plugins to include them.
func (p *Pipeline) WantsFrames() bool {
	for _, s := range p.stages.Load().sinks {
		if s.packets && s.frames {
			return true
		}
	}
	return false
}

func (p *Pipeline) closeSpools() {
	for name := range p.spools {
		p.closeSpool(name)
	}
}

// alertID is an alert's identity: a hash of what makes it (sensor,
// detector, label, source, window size and start), so the same verdict on
// the same window has the same ID however often it is computed: a batch
// re-sent, a replay run again, a core restarted after kill -9. Stores keep
// one alert per ID.
func alertID(sensor, detector, label string, src netip.Addr, window time.Duration, start time.Time) string {
	b := make([]byte, 0, 128)
	for _, s := range []string{"netguardian alert 1", sensor, detector, label} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	addr, _ := src.MarshalBinary() // never fails; empty for no address
	b = binary.AppendUvarint(b, uint64(len(addr)))
	b = append(b, addr...)
	b = binary.BigEndian.AppendUint64(b, uint64(window))
	b = binary.BigEndian.AppendUint64(b, uint64(start.UnixNano()))
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// Run starts every stage and returns when the captures have ended and
// everything downstream is drained (the order of a clean shutdown), or
// when ctx ends. After ctx ends it still drains for up to drainTimeout:
// capture stops, windows flush as partial, detectors finish, sinks flush.
// It logs one line per step of the drain ("drain 1/4" to "drain 4/4").
// While it runs, Reload may change the plugins.
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

	rs := &runState{ctx: ctx, drainCtx: drainCtx, captures: map[*host.Plugin]*captureRun{}, ended: make(chan struct{}, 1)}
	p.reloadMu.Lock()
	p.run = rs
	set := p.stages.Load()
	for _, s := range set.sinks {
		p.startSink(rs, s)
	}
	for _, d := range set.detectors {
		p.startDetector(rs, d)
	}
	aggDone := make(chan error, 1)
	go func() { aggDone <- p.runAggregator() }()
	// Without a capture (a central view: only sinks serving queries) it
	// runs until it is stopped.
	for _, c := range set.captures {
		p.startCapture(rs, c)
	}
	close(p.started)
	p.reloadMu.Unlock()

	select {
	case <-ctx.Done():
	case <-rs.ended:
	}
	p.reloadMu.Lock() // waits for a reload in progress; none starts after
	p.stopping = true
	p.reloadMu.Unlock()
	drainStart := time.Now()
	since := func() time.Duration { return time.Since(drainStart).Round(time.Millisecond) }
	reason := "input ended"
	if ctx.Err() != nil {
		reason = "stop requested"
	}

	// The figures come from the pipeline's own atomic counters: the
	// aggregator's are its goroutine's until it has ended.
	p.stopCaptures(rs)
	set = p.stages.Load()
	windows := p.stats.windowTotal()
	p.log.Info("drain 1/4: captures stopped", "reason", reason, "captures", len(set.captures), "packets", p.stats.packets.Load(), "elapsed", since())

	close(p.packets)
	aggErr := <-aggDone
	alerts := p.stats.alerts.Load()
	p.log.Info("drain 2/4: windows flushed", "windows", p.stats.windowTotal()-windows, "elapsed", since())

	for _, d := range set.detectors {
		close(d.retired)
	}
	rs.detWG.Wait()
	var acked uint64
	for _, s := range set.sinks {
		acked -= s.w.Acked()
	}
	p.log.Info("drain 3/4: detectors finished", "detectors", len(set.detectors), "alerts", p.stats.alerts.Load()-alerts, "elapsed", since())

	for _, s := range set.sinks {
		s.w.Close()
	}
	rs.sinkWG.Wait()
	var unacked, spooled int
	var pastBound, lost uint64
	for _, s := range set.sinks {
		acked += s.w.Acked()
		unacked += len(s.w.Unacked())
		if s.spool != nil {
			spooled += s.w.Queued()
		}
		pastBound += s.pastBound.Load()
		lost += s.lost.Load()
	}
	p.log.Info("drain 4/4: sinks flushed", "sinks", len(set.sinks), "acked_batches", acked, "left_in_spool", spooled,
		"spooled_past_bound", pastBound, "timed_out", drainCtx.Err() != nil, "elapsed", since())
	if pastBound > 0 {
		p.log.Warn("a full spool took the last batches past its bound at the drain timeout, so that none was lost", "batches", pastBound)
	}
	if n := unacked + spooled; n > 0 {
		p.log.Warn("shutdown left batches unacknowledged by sinks (spooled ones are sent at the next start)", "batches", n)
	}
	var sinkErrs []error
	for _, s := range set.sinks {
		sinkErrs = append(sinkErrs, s.err)
	}
	rs.capMu.Lock()
	captureErr := errors.Join(rs.capErrs...)
	rs.capMu.Unlock()
	var lostErr error
	if lost > 0 {
		lostErr = fmt.Errorf("%d feature and alert batches could not be queued for sinks and are lost (see the log)", lost)
	}
	return errors.Join(captureErr, aggErr, lostErr, errors.Join(filterCanceled(sinkErrs)...))
}

// windowTotal is the number of window rows closed, all sizes.
func (c *counters) windowTotal() uint64 {
	return c.win5.Load() + c.win30.Load() + c.win180.Load() + c.winOther.Load()
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

// takePackets hands a batch to the aggregator (blocking: back-pressure on
// the capture) and to sinks that store raw packets (dropping, counted,
// when they cannot keep up and that is allowed).
func (p *Pipeline) takePackets(ctx context.Context, c *host.Plugin, b *sdk.PacketBatch) error {
	p.stats.captureCounters.Store(c.Name(), b.Counters)
	held, err := p.packetsToSinks(ctx, b)
	if err != nil {
		return err
	}
	select {
	case p.packets <- queuedBatch{b: b, recycle: !held}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// queuedBatch is a packet batch on its way to the aggregator; recycle says
// that nothing else holds it, so its columns can be reused once added.
type queuedBatch struct {
	b       *sdk.PacketBatch
	recycle bool
}

// packetsToSinks hands raw packets to the sinks that store them. held
// reports that a sink kept the batch itself (a spool copies it).
func (p *Pipeline) packetsToSinks(ctx context.Context, b *sdk.PacketBatch) (held bool, err error) {
	set := p.acquire()
	defer set.release()
	for _, s := range set.sinks {
		if !s.packets {
			continue
		}
		rec := sdk.Records{Packets: b}
		if s.spool != nil {
			switch err := p.spoolPackets(ctx, s, rec, p.cfg.DropRawPackets); {
			case errors.Is(err, errShed):
				s.dropped.Add(1)
				s.droppedP.Add(uint64(b.Len()))
			case err != nil:
				return held, err
			}
			continue
		}
		if !p.cfg.DropRawPackets {
			held = true
			if err := s.writePackets(ctx, rec, true); err != nil {
				return held, err
			}
			continue
		}
		if s.w.Queued() >= p.cfg.QueueDepth {
			s.dropped.Add(1)
			s.droppedP.Add(uint64(b.Len()))
			continue
		}
		held = true
		if err := s.write(ctx, rec); err != nil {
			return held, err
		}
	}
	return held, nil
}

// writePackets is write for raw packets on the capture's context ctx. A
// write that may wait (mayBlock) also ends when the sink is removed.
func (s *sinkStage) writePackets(ctx context.Context, rec sdk.Records, mayBlock bool) error {
	if mayBlock && s.wctx != nil {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(s.wctx, cancel)()
		ctx = wctx
	}
	return s.write(ctx, rec)
}

// runAggregator feeds the aggregator until the packet queue is closed,
// then flushes every open window. It does not stop when the drain times
// out: the packets queued and the windows open were accepted, and from
// then on their windows go to sinks' spools without waiting (see keep).
func (p *Pipeline) runAggregator() error {
	// Live capture closes idle windows by wall clock; a reload may add
	// or remove the live capture, so the ticker always runs.
	t := time.NewTicker(time.Second)
	defer t.Stop()
	tick := t.C
	for {
		select {
		case q, ok := <-p.packets:
			b := q.b
			if !ok {
				err := p.agg.Close()
				p.publishAggStats()
				return err
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
			err := p.agg.Add(b)
			p.publishAggStats()
			if q.recycle {
				b.Recycle()
			}
			if err != nil {
				return err
			}
		case now := <-tick:
			if !p.live.Load() {
				continue
			}
			err := p.agg.Tick(now)
			p.publishAggStats()
			if err != nil {
				return err
			}
		}
	}
}

// publishAggStats makes the aggregator's counters readable by Stats. On
// the aggregator's goroutine only.
func (p *Pipeline) publishAggStats() {
	s := p.agg.Stats()
	p.aggStats.Store(&s)
}

// emitWindows is the aggregator's output: closed windows of one size. They
// are counted once every sink has them queued (on disk, with a spool).
func (p *Pipeline) emitWindows(b *sdk.FeatureBatch) error {
	if len(b.Rows) == 0 {
		return nil
	}
	b.Sensor = p.cfg.Sensor
	set := p.acquire()
	defer set.release()
	for _, s := range set.sinks {
		if s.features {
			p.keep(s, sdk.Records{Features: b})
		}
	}
	p.stats.windows(b.Window).Add(uint64(len(b.Rows)))
	if p.cfg.Recorder != nil {
		// The in-memory view: a drain that timed out still records it.
		if err := p.cfg.Recorder.AppendFeatures(context.WithoutCancel(p.runCtx()), b); err != nil {
			return fmt.Errorf("record features: %w", err)
		}
	}
	closed := time.Now()
	for _, d := range set.detectors {
		if d.windows[b.Window] {
			select {
			case d.in <- closedWindows{project(b, d.names), closed}:
			case <-d.retired: // a reload that outwaited us retired it
			}
		}
	}
	return nil
}

// writeCtx is what a producer's write to s waits on: the stage's own
// context while it runs (a reload that removes the sink, or the drain
// timeout, ends it).
func (s *sinkStage) writeCtx(ctx context.Context) context.Context {
	if s.wctx != nil {
		return s.wctx
	}
	return ctx
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

// runDetector scores the windows queued for d until the stage is retired
// and its queue is empty.
func (p *Pipeline) runDetector(ctx context.Context, d *detectorStage) {
	for {
		select {
		case w := <-d.in:
			p.detect(ctx, d, w)
		case <-d.retired:
			for {
				select {
				case w := <-d.in:
					p.detect(ctx, d, w)
				default:
					return
				}
			}
		}
	}
}

// detect scores one batch of windows and records its alerts.
func (p *Pipeline) detect(ctx context.Context, d *detectorStage, w closedWindows) {
	b := w.batch
	start := time.Now()
	alerts, err := d.p.Detect(ctx, b, p.cfg.DetectTimeout)
	d.latency.observe(time.Since(start))
	d.calls.Add(1)
	if err != nil {
		d.fails.Add(1)
		p.log.Error("detector failed on a batch; its windows still reach the sinks", "detector", d.p.Name(), "window", b.Window, "rows", len(b.Rows), "error", err)
		return
	}
	if len(alerts) == 0 {
		return
	}
	alerts = p.fillAlerts(d, b, alerts)
	p.recordAlerts(ctx, alerts)
	d.alerts.Add(uint64(len(alerts)))
	p.stats.alerts.Add(uint64(len(alerts)))
	d.closeToAlert.observe(time.Since(w.closedAt))
}

// fillAlerts sets what the core owns in a detector's alerts on b: the
// window, the source and the identity. An alert's Time is its window's
// aligned end (start + size) in packet time: like its ID it does not
// depend on when or how often the window was computed. A repeated verdict
// (same row and label) is kept once.
func (p *Pipeline) fillAlerts(d *detectorStage, b *sdk.FeatureBatch, alerts []sdk.Alert) []sdk.Alert {
	var seen map[string]bool
	if len(alerts) > 1 {
		seen = make(map[string]bool, len(alerts))
	}
	out := alerts[:0]
	for _, a := range alerts {
		row := b.Rows[a.Row]
		a.Sensor, a.Detector = p.cfg.Sensor, d.p.Name()
		a.Src, a.Window, a.Start, a.End, a.Time = row.Src, b.Window, row.Start, row.End, row.Start.Add(b.Window).UTC()
		a.ID = alertID(a.Sensor, a.Detector, a.Label, a.Src, a.Window, a.Start)
		if a.Severity == "" {
			a.Severity = sdk.SeverityMedium
		}
		if seen != nil {
			if seen[a.ID] {
				continue
			}
			seen[a.ID] = true
		}
		out = append(out, a)
	}
	if n := len(alerts) - len(out); n > 0 {
		p.log.Warn("detector raised the same label twice for one window; kept the first", "detector", d.p.Name(), "repeated", n)
	}
	return out
}

// recordAlerts queues alerts for the sinks (never dropped: see keep), then
// records them and tells the listeners.
func (p *Pipeline) recordAlerts(ctx context.Context, alerts []sdk.Alert) {
	set := p.acquire()
	for _, s := range set.sinks {
		if s.alerts {
			p.keep(s, sdk.Records{Alerts: alerts})
		}
	}
	set.release()
	if p.cfg.Recorder != nil {
		if err := p.cfg.Recorder.AppendAlerts(context.WithoutCancel(ctx), alerts); err != nil {
			p.log.Error("record alerts", "error", err)
		}
	}
	if p.cfg.OnAlert != nil {
		for _, a := range alerts {
			p.cfg.OnAlert(a)
		}
	}
}
