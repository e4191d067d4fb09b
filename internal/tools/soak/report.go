package main

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Thresholds of "flat", as growth per 10 minutes of the least-squares line
// through the samples after the warm-up (docs/soak.md says why):
//   - RSS: the larger of rssFlatMB and rssFlatShare of the process's mean;
//   - goroutines: goroutinesFlat.
//
// A series is flat when the growth plus two standard errors is under its
// threshold (shrinking when that is even under minus the threshold),
// growing when the growth less two standard errors is at or over it, and
// inconclusive in between (too noisy or too short to tell).
const (
	rssFlatMB      = 2.0
	rssFlatShare   = 0.02
	goroutinesFlat = 1.0
)

// trend is one series after the warm-up.
type trend struct {
	name           string
	n              int
	mean, min, max float64
	first, last    float64
	per10min       float64 // least-squares growth per 10 minutes
	stderr10       float64 // its standard error
	limit          float64 // |per10min| under this is flat
}

// ok: the series is shown not to grow (flat, or shrinking as caches are
// returned).
func (t trend) ok() bool {
	v := t.verdict()
	return v == "flat" || v == "shrinking"
}

func (t trend) verdict() string {
	switch {
	case t.n < 3:
		return "too few samples"
	case t.per10min-2*t.stderr10 >= t.limit:
		return "GROWING"
	case t.per10min+2*t.stderr10 <= -t.limit:
		return "shrinking"
	case t.per10min+2*t.stderr10 < t.limit:
		return "flat"
	default:
		return "inconclusive"
	}
}

// newTrend fits y = a + b·x (x in minutes) over the points.
func newTrend(name string, x, y []float64) trend {
	t := trend{name: name, n: len(y), min: math.Inf(1), max: math.Inf(-1)}
	if len(y) == 0 {
		return t
	}
	var sx, sy float64
	for i := range y {
		sx += x[i]
		sy += y[i]
		t.min = math.Min(t.min, y[i])
		t.max = math.Max(t.max, y[i])
	}
	n := float64(len(y))
	mx, my := sx/n, sy/n
	var sxy, sxx float64
	for i := range y {
		sxy += (x[i] - mx) * (y[i] - my)
		sxx += (x[i] - mx) * (x[i] - mx)
	}
	t.mean, t.first, t.last = my, y[0], y[len(y)-1]
	if sxx > 0 {
		b := sxy / sxx
		t.per10min = b * 10
		if len(y) > 2 {
			var sse float64
			for i := range y {
				e := y[i] - (my + b*(x[i]-mx))
				sse += e * e
			}
			t.stderr10 = math.Sqrt(sse/(n-2)/sxx) * 10
		}
	}
	return t
}

// report is what a soak found.
type report struct {
	start          time.Time
	target         float64
	planned        time.Duration
	warmup         time.Duration
	interval       time.Duration
	starvedMin     float64 // minutes after the warm-up under half the target rate
	pressure       float64 // mean CPU pressure after the warm-up, % (-1 unknown)
	minutes        float64 // sampled span
	meanPPS        float64 // over the whole run, from the packet counter
	steadyPPS      float64 // after the warm-up
	minPPS, maxPPS float64 // of the 10 s samples after the warm-up
	packets        float64
	drops          float64
	sinkDrops      float64
	spoolMaxMB     float64
	spoolLastMB    float64
	restarts       float64
	alerts         float64
	cpu            map[string]float64 // mean % of one core after the warm-up
	machineCPU     float64            // the same for the whole machine
	cores          int
	rss            []trend
	goroutines     []trend // per process: the core, then each plugin once it reported
	heap           trend   // the core's heap in use
	heapLive       []trend // each plugin's live heap
}

func analyze(ss []sample, o options, start time.Time) report {
	r := report{start: start, target: o.rate, planned: o.duration, warmup: o.warmup, interval: o.interval, minPPS: math.Inf(1)}
	if len(ss) == 0 {
		return r
	}
	first, last := ss[0], ss[len(ss)-1]
	r.minutes = last.minutes
	if dt := last.at.Sub(first.at).Seconds(); dt > 0 {
		r.meanPPS = (last.metrics.packets() - first.metrics.packets()) / dt
	}
	r.packets, r.drops, r.sinkDrops = last.metrics.packets(), last.metrics.drops(""), last.metrics.drops("sink")
	r.restarts, r.alerts = last.restarts, last.metrics.sum("netguardian_alerts_total", nil)
	r.spoolLastMB = last.spoolMB
	var steady []sample
	for _, s := range ss {
		r.spoolMaxMB = math.Max(r.spoolMaxMB, s.spoolMB)
		if s.minutes >= o.warmup.Minutes() {
			steady = append(steady, s)
		}
	}
	r.cpu, r.cores, r.pressure = map[string]float64{}, runtime.NumCPU(), -1
	cpuN, pressureN := map[string]int{}, 0
	for i, s := range steady {
		if i == 0 { // its rates span the end of the warm-up
			continue
		}
		r.minPPS, r.maxPPS = math.Min(r.minPPS, s.pps), math.Max(r.maxPPS, s.pps)
		if s.pps < r.target/2 {
			r.starvedMin += s.minutes - steady[i-1].minutes
		}
		if s.cpuPressure >= 0 {
			if pressureN == 0 {
				r.pressure = 0
			}
			r.pressure += s.cpuPressure
			pressureN++
		}
		for n, v := range s.cpuPct {
			r.cpu[n] += v
			cpuN[n]++
		}
		r.machineCPU += s.machinePct / float64(len(steady)-1)
	}
	for n := range r.cpu {
		r.cpu[n] /= float64(cpuN[n])
	}
	if pressureN > 0 {
		r.pressure /= float64(pressureN)
	}
	if len(steady) >= 2 {
		a, b := steady[0], steady[len(steady)-1]
		r.steadyPPS = (b.metrics.packets() - a.metrics.packets()) / b.at.Sub(a.at).Seconds()
	}
	column := func(get func(sample) (float64, bool)) (x, y []float64) {
		for _, s := range steady {
			if v, ok := get(s); ok {
				x, y = append(x, s.minutes), append(y, v)
			}
		}
		return x, y
	}
	for _, n := range processColumns {
		x, y := column(func(s sample) (float64, bool) { v, ok := s.rssMB[n]; return v, ok })
		t := newTrend(n, x, y)
		t.limit = math.Max(rssFlatMB, rssFlatShare*t.mean)
		r.rss = append(r.rss, t)
	}
	for _, n := range processColumns {
		x, y := column(func(s sample) (float64, bool) { v, ok := s.goroutines[n]; return v, ok })
		if n != "netguardian" && len(y) == 0 {
			continue // an older CSV, or a plugin that never reported
		}
		t := newTrend(n, x, y)
		t.limit = goroutinesFlat
		r.goroutines = append(r.goroutines, t)
	}
	for _, n := range pluginNames {
		x, y := column(func(s sample) (float64, bool) { v, ok := s.heapLiveMB[n]; return v, ok })
		if len(y) > 0 {
			t := newTrend(n, x, y)
			t.limit = math.Max(rssFlatMB, rssFlatShare*t.mean)
			r.heapLive = append(r.heapLive, t)
		}
	}
	x, y := column(func(s sample) (float64, bool) { return s.metrics.heapMB(), true })
	r.heap = newTrend("core heap in use", x, y)
	r.heap.limit = math.Max(rssFlatMB, rssFlatShare*r.heap.mean)
	return r
}

// flat: no process's RSS or goroutines grow after the warm-up.
func (r report) flat() bool {
	for _, t := range append(append([]trend{}, r.rss...), r.goroutines...) {
		if !t.ok() {
			return false
		}
	}
	return true
}

// enough: there are samples to judge after the warm-up.
func (r report) enough() bool { return len(r.goroutines) > 0 && r.goroutines[0].n >= 3 }

func (r report) print(w io.Writer, csvPath string) {
	fmt.Fprintf(w, "\nsoak of %s: %.1f of %v sampled, warm-up %v (samples: %s)\n",
		r.start.UTC().Format("2006-01-02 15:04 MST"), r.minutes, r.planned, r.warmup, csvPath)
	fmt.Fprintf(w, "rate: target %.0f packets/s; achieved %.0f over the run", r.target, r.meanPPS)
	if r.steadyPPS > 0 {
		fmt.Fprintf(w, ", %.0f after the warm-up (%v samples %.0f..%.0f)", r.steadyPPS, r.interval, r.minPPS, r.maxPPS)
	}
	fmt.Fprintln(w)
	if r.steadyPPS > 0 && r.steadyPPS < 0.95*r.target {
		fmt.Fprintf(w, "rate: below target by %.0f%% (a shared machine, or the sensor cannot keep up: see drops, spool and CPU)\n",
			100*(1-r.steadyPPS/r.target))
	}
	if r.starvedMin > 0 {
		fmt.Fprintf(w, "rate: under half the target for %.1f min after the warm-up\n", r.starvedMin)
	}
	fmt.Fprintf(w, "packets %.0f, dropped %.0f (raw packets shed for the sink: %.0f), alerts %.0f, plugin restarts %.0f, spool max %.1f MB (at the end %.1f MB)\n",
		r.packets, r.drops, r.sinkDrops, r.alerts, r.restarts, r.spoolMaxMB, r.spoolLastMB)
	if len(r.cpu) > 0 {
		var parts []string
		var soak float64
		for _, n := range cpuColumns {
			parts = append(parts, fmt.Sprintf("%s %.0f", n, r.cpu[n]))
			soak += r.cpu[n]
		}
		fmt.Fprintf(w, "CPU after warm-up, %% of one core: %s; the soak %.0f, the whole machine %.0f of %d00 (other work %.0f)\n",
			strings.Join(parts, ", "), soak, r.machineCPU, r.cores, math.Max(0, r.machineCPU-soak))
	}
	if r.pressure >= 0 {
		fmt.Fprintf(w, "CPU pressure after warm-up (some task waiting for a CPU): %.0f%% of the time\n", r.pressure)
	}
	fmt.Fprintf(w, "%-20s %8s %8s %8s %22s %10s  %s\n", "after warm-up", "mean", "min", "max", "growth/10min ± s.e.", "flat under", "verdict")
	row := func(t trend, unit string) {
		fmt.Fprintf(w, "%-20s %8.1f %8.1f %8.1f %+11.2f ± %5.2f %-2s %7.2f %-2s  %s\n",
			t.name, t.mean, t.min, t.max, t.per10min, t.stderr10, unit, t.limit, unit, t.verdict())
	}
	for _, t := range r.rss {
		t.name = "RSS " + t.name
		row(t, "MB")
	}
	for _, t := range r.goroutines {
		t.name = "goroutines " + t.name
		row(t, "")
	}
	// Heaps explain RSS (which follows them, with the runtime's lag in
	// returning memory); they are not part of the verdict.
	for _, h := range append([]trend{r.heap}, r.heapLive...) {
		if h.name != r.heap.name {
			h.name = "heap live " + h.name
		}
		fmt.Fprintf(w, "%-20s %8.1f %8.1f %8.1f %+11.2f ± %5.2f MB  (for reading RSS; not part of the verdict)\n",
			h.name, h.mean, h.min, h.max, h.per10min, h.stderr10)
	}
	switch {
	case !r.enough():
		fmt.Fprintln(w, "verdict: NONE: fewer than 3 samples after the warm-up")
	case r.flat():
		fmt.Fprintln(w, "verdict: FLAT: no RSS or goroutine growth after the warm-up")
	default:
		fmt.Fprintln(w, "verdict: NOT FLAT (see the rows above)")
	}
}

// plotSoak draws RSS per process, the core's goroutines, packets/s and the
// sink spool against minutes, one panel each, to a PNG.
func plotSoak(path string, r report, ss []sample) error {
	title := fmt.Sprintf("NetGuardian soak %s: target %.0fk packets/s (achieved %.0fk), %.0f min, every plugin on",
		r.start.UTC().Format("2006-01-02"), r.target/1000, r.steadyPPS/1000, r.minutes)
	if r.steadyPPS == 0 {
		title = fmt.Sprintf("NetGuardian soak %s: target %.0fk packets/s (achieved %.0fk), %.0f min, every plugin on",
			r.start.UTC().Format("2006-01-02"), r.target/1000, r.meanPPS/1000, r.minutes)
	}
	rss := panel(title, "RSS (MB)")
	if err := addProcessLines(rss, ss, func(s sample) map[string]float64 { return s.rssMB }, r.rss, "MB"); err != nil {
		return err
	}
	rss.Legend.Top, rss.Legend.Left = true, true
	rss.Y.Min = 0

	// Heaps: the core's in use (live data plus garbage not yet collected),
	// the plugins' live after their last GC: what RSS follows.
	heap := panel("", "Go heap (MB)")
	hl, err := addSeries(heap, ss, func(s sample) float64 { return s.metrics.heapMB() }, plotutil.Color(0))
	if err != nil {
		return err
	}
	heap.Legend.Add("netguardian in use", hl)
	if err := addProcessLines(heap, ss, func(s sample) map[string]float64 { return s.heapLiveMB }, r.heapLive, "MB"); err != nil {
		return err
	}
	heap.Legend.Top, heap.Legend.Left = true, true
	heap.Y.Min = 0
	heap.Y.Max *= 1.3

	gor := panel("", "goroutines")
	if err := addProcessLines(gor, ss, func(s sample) map[string]float64 { return s.goroutines }, r.goroutines, ""); err != nil {
		return err
	}
	gor.Legend.Top, gor.Legend.Left = true, true
	gor.Y.Min = 0
	gor.Y.Max = math.Max(gor.Y.Max*1.3, 10)

	pps := panel("", "packets/s (thousands)")
	pl, err := addSeries(pps, ss[1:], func(s sample) float64 { return s.pps / 1000 }, plotutil.Color(2))
	if err != nil {
		return err
	}
	pps.Legend.Add("packets/s (10 s samples)", pl)
	target, err := plotter.NewLine(plotter.XYs{{X: 0, Y: r.target / 1000}, {X: r.minutes, Y: r.target / 1000}})
	if err != nil {
		return err
	}
	target.Color, target.Dashes = color.Gray{Y: 90}, []vg.Length{vg.Points(4), vg.Points(3)}
	pps.Add(target)
	pps.Legend.Add("target", target)
	if r.drops > 0 {
		dl, err := addSeries(pps, ss[1:], func(s sample) float64 { return s.dropsPS / 1000 }, plotutil.Color(1))
		if err != nil {
			return err
		}
		pps.Legend.Add("packets dropped/s", dl)
	}
	pps.Legend.Top, pps.Legend.Left = true, false
	pps.Y.Min = 0
	pps.Y.Max = math.Max(pps.Y.Max, r.target/1000) * 1.35

	spool := panel("", "sink spool (MB)")
	sl, err := addSeries(spool, ss, func(s sample) float64 { return s.spoolMB }, plotutil.Color(3))
	if err != nil {
		return err
	}
	spool.Legend.Add("batches on disk waiting for sink-postgres", sl)
	spool.Legend.Top, spool.Legend.Left = true, true
	spool.Y.Min = 0
	spool.Y.Max = math.Max(spool.Y.Max*1.3, 10)
	spool.X.Label.Text = "minutes since start (dashed: end of warm-up)"

	plots := [][]*plot.Plot{{rss}, {heap}, {gor}, {pps}, {spool}}
	for _, row := range plots {
		p := row[0]
		p.X.Min, p.X.Max = 0, math.Max(r.minutes, 1)
		if r.warmup > 0 && r.warmup.Minutes() < r.minutes {
			w, err := plotter.NewLine(plotter.XYs{{X: r.warmup.Minutes(), Y: p.Y.Min}, {X: r.warmup.Minutes(), Y: p.Y.Max}})
			if err != nil {
				return err
			}
			w.Color, w.Dashes = color.Gray{Y: 150}, []vg.Length{vg.Points(2), vg.Points(2)}
			p.Add(w)
		}
	}
	img := vgimg.New(vg.Points(900), vg.Points(1250))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: len(plots), Cols: 1, PadTop: vg.Points(6), PadBottom: vg.Points(6), PadLeft: vg.Points(6),
		PadRight: vg.Points(12), PadY: vg.Points(10)}
	canvases := plot.Align(plots, tiles, dc)
	for i := range plots {
		plots[i][0].Draw(canvases[i][0])
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func panel(title, ylabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = strings.TrimSpace(title)
	p.Y.Label.Text = ylabel
	p.Add(plotter.NewGrid())
	return p
}

// addProcessLines draws one line per process (processColumns order and
// colours) of the values get picks from each sample, labelled with the
// trend after the warm-up.
func addProcessLines(p *plot.Plot, ss []sample, get func(sample) map[string]float64, trends []trend, unit string) error {
	for i, n := range processColumns {
		var xy plotter.XYs
		for _, s := range ss {
			if v, ok := get(s)[n]; ok {
				xy = append(xy, plotter.XY{X: s.minutes, Y: v})
			}
		}
		if len(xy) == 0 {
			continue
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return err
		}
		l.Color, l.Width = plotutil.Color(i), vg.Points(1.5)
		p.Add(l)
		label := n
		for _, t := range trends {
			if t.name == n && t.n >= 3 {
				label = strings.TrimSpace(fmt.Sprintf("%s (%+.1f %s/10 min)", n, t.per10min, unit))
			}
		}
		p.Legend.Add(label, l)
	}
	return nil
}

func addSeries(p *plot.Plot, ss []sample, get func(sample) float64, c color.Color) (*plotter.Line, error) {
	xy := make(plotter.XYs, 0, len(ss))
	for _, s := range ss {
		xy = append(xy, plotter.XY{X: s.minutes, Y: get(s)})
	}
	l, err := plotter.NewLine(xy)
	if err != nil {
		return nil, err
	}
	l.Color, l.Width = c, vg.Points(1.5)
	p.Add(l)
	return l, nil
}
