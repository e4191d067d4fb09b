package pipeline

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netguardian/netguardian/core/host"
	"github.com/netguardian/netguardian/core/spool"
	"github.com/netguardian/netguardian/sdk"
)

// This file is how the pipeline changes its plugins while it runs (a
// SIGHUP reload): stages are swapped as a whole, and what a stage that
// goes away still holds is finished or kept on disk, never dropped.

// Plugins is the set of plugins a pipeline runs.
type Plugins struct {
	Captures, Detectors, Sinks []*host.Plugin
	// Live makes the aggregator also close idle windows by wall clock (a
	// capture reads an interface).
	Live bool
}

// ErrStopping is returned by Reload once the pipeline has begun to stop.
var ErrStopping = errors.New("the pipeline is stopping")

// stageSet is the pipeline's stages at one time. It is never modified:
// a reload publishes a new one. Producers (captures, the aggregator,
// detectors) hold one with acquire/release while they hand a batch on, so
// a reload can tell when nobody uses the stages it retired.
type stageSet struct {
	captures  []*host.Plugin
	detectors []*detectorStage
	sinks     []*sinkStage
	users     atomic.Int64
}

// acquire returns the current stages, counted as used until release.
func (p *Pipeline) acquire() *stageSet {
	for {
		s := p.stages.Load()
		s.users.Add(1)
		// A reload that published a newer set between Load and Add waits
		// only for users counted before it published: check and retry.
		if p.stages.Load() == s {
			return s
		}
		s.users.Add(-1)
	}
}

func (s *stageSet) release() { s.users.Add(-1) }

// waitUnused waits until no producer uses s (it was replaced), or timeout.
func (s *stageSet) waitUnused(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for s.users.Load() != 0 {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

func (s *stageSet) detector(p *host.Plugin) *detectorStage {
	for _, d := range s.detectors {
		if d.p == p {
			return d
		}
	}
	return nil
}

func (s *stageSet) sink(p *host.Plugin) *sinkStage {
	for _, k := range s.sinks {
		if k.p == p {
			return k
		}
	}
	return nil
}

// runState is what Run sets up for the stages it starts; Reload starts
// and stops stages in it too.
type runState struct {
	ctx      context.Context // Run's: captures stop when it ends
	drainCtx context.Context // downstream stages': outlives ctx by the drain timeout

	detWG, sinkWG sync.WaitGroup

	capMu    sync.Mutex
	captures map[*host.Plugin]*captureRun
	running  int           // captures not removed by a reload that have not ended
	ended    chan struct{} // gets a value when the last of them ended by itself
	capErrs  []error
}

type captureRun struct {
	cancel  context.CancelFunc
	done    chan struct{}
	removed bool // stopped on purpose (reload, shutdown): its end is not the input's
}

// startCapture runs c until its input ends or it is stopped.
func (p *Pipeline) startCapture(rs *runState, c *host.Plugin) {
	ctx, cancel := context.WithCancel(rs.ctx)
	cr := &captureRun{cancel: cancel, done: make(chan struct{})}
	rs.capMu.Lock()
	rs.captures[c] = cr
	rs.running++
	rs.capMu.Unlock()
	go func() {
		defer close(cr.done)
		defer cancel()
		err := c.RunCapture(ctx, func(b *sdk.PacketBatch) error { return p.takePackets(ctx, c, b) }, func(l host.CaptureLoss) {
			p.stats.captureLost.Add(l.To - l.From)
			p.log.Warn("capture lost packets while restarting", "capture", c.Name(), "from", l.From, "to", l.To)
		})
		rs.capMu.Lock()
		defer rs.capMu.Unlock()
		stopped := cr.removed || rs.ctx.Err() != nil
		if err != nil && !(stopped && errors.Is(err, context.Canceled)) {
			p.log.Error("capture ended with an error", "capture", c.Name(), "error", err)
			rs.capErrs = append(rs.capErrs, err)
		}
		if rs.captures[c] == cr {
			delete(rs.captures, c)
		}
		if !cr.removed {
			rs.running--
			if rs.running == 0 {
				select {
				case rs.ended <- struct{}{}:
				default:
				}
			}
		}
	}()
}

// stopCapture stops c and waits for it; its end does not count as the
// input ending.
func (p *Pipeline) stopCapture(rs *runState, c *host.Plugin) {
	rs.capMu.Lock()
	cr := rs.captures[c]
	if cr != nil && !cr.removed {
		cr.removed = true
		rs.running--
	}
	rs.capMu.Unlock()
	if cr != nil {
		cr.cancel()
		<-cr.done
	}
}

// stopCaptures stops every capture still running.
func (p *Pipeline) stopCaptures(rs *runState) {
	rs.capMu.Lock()
	var running []*host.Plugin
	for c := range rs.captures {
		running = append(running, c)
	}
	rs.capMu.Unlock()
	for _, c := range running {
		p.stopCapture(rs, c)
	}
}

func (p *Pipeline) startDetector(rs *runState, d *detectorStage) {
	d.ctx, d.cancel = context.WithCancel(rs.drainCtx)
	rs.detWG.Add(1)
	go func() {
		defer rs.detWG.Done()
		defer close(d.done)
		defer d.cancel()
		p.runDetector(d.ctx, d)
	}()
}

func (p *Pipeline) startSink(rs *runState, s *sinkStage) {
	s.wctx, s.wcancel = context.WithCancel(rs.drainCtx)
	ctx, cancel := context.WithCancel(rs.drainCtx)
	s.cancel = cancel
	rs.sinkWG.Add(1)
	go func() {
		defer rs.sinkWG.Done()
		defer close(s.done)
		defer cancel()
		s.err = s.w.Run(ctx)
	}()
}

// newDetectorStage checks what the detector asks for and builds its stage.
func (p *Pipeline) newDetectorStage(d *host.Plugin) (*detectorStage, error) {
	info := d.Info()
	for _, f := range info.Features {
		if !sdk.KnownFeature(f) {
			return nil, fmt.Errorf("detector %q asks for unknown feature %q (feature schema version %d knows: %v)", d.Name(), f, sdk.FeatureSchemaVersion, sdk.Features)
		}
	}
	st := &detectorStage{p: d, windows: map[time.Duration]bool{}, names: info.Features, in: make(chan closedWindows, p.cfg.QueueDepth),
		retired: make(chan struct{}), done: make(chan struct{}), latency: newLatencyHist(), closeToAlert: newLatencyHist()}
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
	return st, nil
}

// newSinkStage builds a sink's stage. With a spool dir its queue is the
// spool of its name, opened once per run: a sink replaced by a reload
// hands its spool, and what is in it, to its successor. opened reports a
// spool this call opened.
func (p *Pipeline) newSinkStage(s *host.Plugin) (st *sinkStage, opened bool, err error) {
	info := s.Info()
	st = &sinkStage{p: s, frames: info.WantsFrames, latency: newLatencyHist(), done: make(chan struct{}), retired: make(chan struct{})}
	if p.cfg.SpoolDir != "" {
		sp := p.spools[s.Name()]
		if sp == nil {
			var rec spool.Recovery
			sp, rec, err = spool.Open(spool.Options{Dir: filepath.Join(p.cfg.SpoolDir, s.Name()), MaxBytes: p.cfg.SpoolMaxBytes, SegmentBytes: spoolSegmentBytes(p.cfg.SpoolMaxBytes)})
			if err != nil {
				return nil, false, fmt.Errorf("sink %q: %w", s.Name(), err)
			}
			if rec.Clean() {
				p.log.Info("sink spool opened", "sink", s.Name(), "recovered", rec.String())
			} else {
				p.log.Warn("sink spool recovered with losses", "sink", s.Name(), "recovery", rec.String())
			}
			p.spools[s.Name()] = sp
			opened = true
		}
		st.spool = sp
		st.rawLimit = int64(float64(sp.Stats().MaxBytes) * rawHighWater)
		st.w = s.NewSpooledSinkWriter(sp, 8, p.cfg.DropRawPackets)
	} else {
		st.w = s.NewSinkWriter(p.cfg.QueueDepth, 8)
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
	return st, opened, nil
}

func (p *Pipeline) closeSpool(name string) {
	if sp := p.spools[name]; sp != nil {
		if err := sp.Close(); err != nil {
			p.log.Warn("close sink spool", "sink", name, "error", err)
		}
		delete(p.spools, name)
	}
}

// SinksWantFrames reports whether one of sinks asked for raw packets with
// their frames: what tells capture plugins to include them.
func SinksWantFrames(sinks []*host.Plugin) bool {
	for _, s := range sinks {
		info := s.Info()
		if info.WantsFrames && slices.Contains(info.Records, sdk.RecordPackets) {
			return true
		}
	}
	return false
}

// Reload makes next the pipeline's plugins while Run runs. Plugins in both
// the current set and next (the same *host.Plugin) keep their stage: their
// queue, their counters and their process. The others are new or retired:
//
//   - a retired capture stops before new captures start, so a changed
//     capture never runs twice at once;
//   - a new detector gets windows that close from now on; a retired one
//     scores what it has queued (for at most flushTimeout), then its
//     stage ends;
//   - a sink replaced by one of the same name hands over its spool: the
//     old writer stops and the new sink gets everything not yet
//     acknowledged, so nothing is lost (a batch may be sent twice, as
//     after a crash);
//   - a removed sink gets flushTimeout to deliver what is queued; what it
//     has not acknowledged then stays in spool_dir/NAME, sent when a sink
//     of that name is configured again.
//
// The caller starts and configures the new plugins before, and stops the
// retired ones after. An error (a detector asking for a feature the core
// does not compute, a spool that cannot be opened) changes nothing.
// ErrStopping is returned once Run has begun to stop.
func (p *Pipeline) Reload(ctx context.Context, next Plugins, flushTimeout time.Duration) error {
	select {
	case <-p.started:
	case <-ctx.Done():
		return ctx.Err()
	}
	p.reloadMu.Lock()
	defer p.reloadMu.Unlock()
	if p.stopping {
		return ErrStopping
	}
	rs := p.run
	cur := p.stages.Load()

	// Build every new stage first: an error leaves the pipeline as it was.
	set := &stageSet{captures: slices.Clone(next.Captures)}
	var newDetectors []*detectorStage
	for _, d := range next.Detectors {
		if st := cur.detector(d); st != nil {
			set.detectors = append(set.detectors, st)
			continue
		}
		st, err := p.newDetectorStage(d)
		if err != nil {
			return err
		}
		set.detectors = append(set.detectors, st)
		newDetectors = append(newDetectors, st)
	}
	var newSinks []*sinkStage
	var opened []string
	for _, s := range next.Sinks {
		if st := cur.sink(s); st != nil {
			set.sinks = append(set.sinks, st)
			continue
		}
		st, o, err := p.newSinkStage(s)
		if err != nil {
			for _, name := range opened {
				p.closeSpool(name)
			}
			return err
		}
		if o {
			opened = append(opened, s.Name())
		}
		set.sinks = append(set.sinks, st)
		newSinks = append(newSinks, st)
	}

	// Captures that go away stop first.
	for _, c := range cur.captures {
		if !slices.Contains(next.Captures, c) {
			p.stopCapture(rs, c)
		}
	}
	for _, st := range newDetectors {
		p.startDetector(rs, st)
	}
	// A replaced sink's writer stops before its successor reads the
	// spool they share; producers still holding the old stage append to
	// that same spool, so what they write reaches the new sink.
	var removedSinks []*sinkStage
	for _, old := range cur.sinks {
		if set.sink(old.p) != nil {
			continue
		}
		if slices.ContainsFunc(newSinks, func(n *sinkStage) bool { return n.p.Name() == old.p.Name() && n.spool != nil && n.spool == old.spool }) {
			old.cancel()
			<-old.done
			continue
		}
		removedSinks = append(removedSinks, old)
	}
	for _, st := range newSinks {
		p.startSink(rs, st)
	}

	p.stages.Store(set)
	p.live.Store(next.Live)
	clean := cur.waitUnused(flushTimeout)
	if !clean {
		p.log.Warn("reload: a stage was still busy after the flush timeout; retired detectors may miss the windows it was handing on", "flush_timeout", flushTimeout)
	}

	// Retired detectors score what they have queued, then end.
	var retiredDetectors []*detectorStage
	for _, d := range cur.detectors {
		if set.detector(d.p) == nil {
			close(d.retired)
			retiredDetectors = append(retiredDetectors, d)
		}
	}
	// Removed sinks flush, then stop; what is left stays in their spool.
	// Producers that held the old stages skip them from now on.
	for _, s := range removedSinks {
		close(s.retired)
		s.wcancel()
	}
	flush, cancelFlush := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
	defer cancelFlush()
	for _, d := range retiredDetectors {
		select {
		case <-d.done:
		case <-flush.Done():
			d.cancel()
			<-d.done
		}
	}
	for _, s := range removedSinks {
		p.flushRemovedSink(flush, s)
	}

	for _, c := range next.Captures {
		if !slices.Contains(cur.captures, c) {
			p.startCapture(rs, c)
		}
	}
	return nil
}

// flushRemovedSink waits, until ctx ends, for a removed sink to
// acknowledge what it has queued, then stops its writer.
func (p *Pipeline) flushRemovedSink(ctx context.Context, s *sinkStage) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
wait:
	for s.w.Queued() > 0 {
		select {
		case <-s.done:
			break wait
		case <-ctx.Done():
			break wait
		case <-tick.C:
		}
	}
	s.cancel()
	<-s.done
	left := s.w.Queued()
	if s.spool != nil {
		p.log.Info("sink removed", "sink", s.p.Name(), "left_in_spool", left, "spool", s.spool.Dir())
	} else if n := len(s.w.Unacked()) + left; n > 0 {
		p.log.Warn("sink removed with batches it had not acknowledged (no spool: they are lost)", "sink", s.p.Name(), "batches", n)
	}
}
