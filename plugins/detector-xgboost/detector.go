package main

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netguardian/netguardian/sdk"
)

// version is the plugin's version, reported by Describe.
const version = "1.0.0"

// config is the plugin's config block; its tags are the schema (sdk.SchemaOf)
// and its values in defaultConfig the defaults.
type config struct {
	Model       string            `ng:"model" help:"path of an XGBoost JSON model (booster.save_model(\"model.json\")); default: the model embedded in the plugin"`
	Labels      string            `ng:"labels" help:"path of the model's labels.json; default: the embedded labels, or labels.json next to model when model is set"`
	MinScore    float64           `ng:"min_score" help:"lowest probability of the top (non-benign) class that raises an alert, in (0, 1]"`
	Severities  map[string]string `ng:"severities" help:"severity per label (low, medium, high, critical); labels left out keep their defaults"`
	Windows     []float64         `ng:"windows" help:"window sizes to score, in seconds (5, 30 or 180)"`
	TopFeatures int               `ng:"top_features" help:"how many features explain each alert (Saabas contributions), 0 for none"`
}

// defaultMinScore comes from the benign false-positive analysis in
// model/REPORT.md.
const defaultMinScore = 0.88

// defaultSeverities are the severities of the shipped model's labels.
// Labels of other models default to medium.
var defaultSeverities = map[string]string{
	"port_scan":         "medium",
	"syn_flood":         "high",
	"udp_flood":         "high",
	"icmp_flood":        "medium",
	"brute_force":       "high",
	"slow_dos":          "high",
	"dns_amplification": "high",
	"dns_tunnel":        "high",
	"data_exfiltration": "critical",
}

func defaultConfig() config {
	sev := make(map[string]string, len(defaultSeverities))
	for k, v := range defaultSeverities {
		sev[k] = v
	}
	return config{MinScore: defaultMinScore, Severities: sev, Windows: []float64{30, 180}, TopFeatures: 5}
}

// state is everything Configure decides; Detect reads it without locks.
type state struct {
	model      *model
	minScore   float64
	severities map[string]sdk.Severity
	windows    []time.Duration
	topK       int
	// describe lists the features Detect asks for: the model's, plus
	// packets_total when the model does not use it (rows without packets
	// of their own are skipped).
	describe []string
}

// detector is the plugin.
type detector struct {
	st     atomic.Pointer[state]
	loaded chan struct{} // closed once st holds the embedded model
	mu     sync.Mutex    // serializes Configure

	scored, skipped, alerts, batches atomic.Uint64
}

// newDetector returns a detector that parses its embedded model in the
// background: parsing takes ~45 ms, during which the plugin handshake with
// the core goes on. Every call waits for it (state); fail is called, once,
// if the embedded model is unusable (a build defect).
func newDetector(fail func(error)) *detector {
	d := &detector{loaded: make(chan struct{})}
	go func() {
		defer close(d.loaded)
		m, err := loadEmbedded()
		var st *state
		if err == nil {
			st, err = newState(defaultConfig(), m)
		}
		if err != nil {
			fail(fmt.Errorf("embedded model: %w", err))
			return
		}
		d.st.Store(st)
	}()
	return d
}

// state returns the current configuration, once the embedded model is in.
func (d *detector) state() *state {
	<-d.loaded
	return d.st.Load()
}

func (d *detector) Describe() sdk.Info {
	st := d.state()
	return sdk.Info{
		Name:     "detector-xgboost",
		Version:  version,
		Kind:     sdk.KindDetector,
		Config:   sdk.SchemaOf(defaultConfig()),
		Features: slices.Clone(st.describe),
		Windows:  slices.Clone(st.windows),
		Labels:   st.labels(),
	}
}

// labels is the label set minus the benign class.
func (st *state) labels() []string {
	out := make([]string, 0, len(st.model.classes)-1)
	for i, c := range st.model.classes {
		if i != st.model.benign {
			out = append(out, c)
		}
	}
	return out
}

func (d *detector) Configure(_ context.Context, c sdk.Config) error {
	<-d.loaded // or the embedded state would replace this one
	d.mu.Lock()
	defer d.mu.Unlock()
	cfg := defaultConfig()
	// Severities given in the config are merged over the defaults: Decode
	// unmarshals a JSON object into the existing map.
	if err := c.Decode(&cfg); err != nil {
		return err
	}
	var m *model
	var err error
	switch {
	case cfg.Model != "":
		m, err = loadModelFiles(cfg.Model, cfg.Labels)
	case cfg.Labels != "":
		return fmt.Errorf("labels: set only together with model (the embedded model comes with its own labels)")
	default:
		m, err = loadEmbedded()
	}
	if err != nil {
		return err
	}
	st, err := newState(cfg, m)
	if err != nil {
		return err
	}
	for _, w := range st.windows {
		if len(m.windows) > 0 && !slices.Contains(m.windows, w.Seconds()) {
			sdk.Logger().Warn("model was not trained on this window size; scores may be unreliable",
				"window", w.String(), "trained_on", m.windows, "model", m.source)
		}
	}
	d.st.Store(st)
	sdk.Logger().Info("model loaded", "model", m.source, "sha256", m.id, "classes", len(m.classes),
		"features", len(m.features), "min_score", st.minScore, "windows", fmt.Sprint(st.windows))
	return nil
}

// newState validates cfg against model m.
func newState(cfg config, m *model) (*state, error) {
	if math.IsNaN(cfg.MinScore) || cfg.MinScore <= 0 || cfg.MinScore > 1 {
		return nil, fmt.Errorf("min_score: %v is not in (0, 1]", cfg.MinScore)
	}
	if cfg.TopFeatures < 0 {
		return nil, fmt.Errorf("top_features: %d is negative", cfg.TopFeatures)
	}
	if len(cfg.Windows) == 0 {
		return nil, fmt.Errorf("windows: empty; list at least one window size in seconds (5, 30, 180)")
	}
	st := &state{model: m, minScore: cfg.MinScore, topK: cfg.TopFeatures, severities: map[string]sdk.Severity{}}
	for _, s := range cfg.Windows {
		w := time.Duration(s * float64(time.Second))
		if !slices.Contains(sdk.WindowSizes, w) {
			return nil, fmt.Errorf("windows: %v s is not a window size the core computes (%s)", s, windowList())
		}
		if !slices.Contains(st.windows, w) {
			st.windows = append(st.windows, w)
		}
	}
	slices.Sort(st.windows)
	labels := st.labels()
	for _, l := range labels {
		st.severities[l] = sdk.SeverityMedium
		if s, ok := defaultSeverities[l]; ok {
			st.severities[l] = sdk.Severity(s)
		}
	}
	keys := make([]string, 0, len(cfg.Severities))
	for k := range cfg.Severities {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, l := range keys {
		v := cfg.Severities[l]
		sev, ok := sdk.ParseSeverity(v)
		if !ok {
			return nil, fmt.Errorf("severities: %q for label %q is not one of low, medium, high, critical", v, l)
		}
		if _, known := st.severities[l]; !known {
			if _, isDefault := defaultSeverities[l]; isDefault && cfg.Severities[l] == defaultSeverities[l] {
				continue // a default for a label this model does not have
			}
			return nil, fmt.Errorf("severities: the model has no label %q (its labels: %s)", l, strings.Join(labels, ", "))
		}
		st.severities[l] = sev
	}
	st.describe = slices.Clone(m.features)
	if !slices.Contains(st.describe, sdk.FeaturePackets) {
		st.describe = append(st.describe, sdk.FeaturePackets)
	}
	return st, nil
}

func windowList() string {
	var s []string
	for _, w := range sdk.WindowSizes {
		s = append(s, fmt.Sprint(w.Seconds()))
	}
	return strings.Join(s, ", ")
}

// details is the JSON stored with each alert:
//
//	{"model": "<sha256 prefix>", "probabilities": {"<class>": p, ...},
//	 "explanation": "saabas", "bias_margin": b}
//
// It is written by appendDetails (classes in model order, no reflection);
// the struct documents the format and reads it back in tests.
type details struct {
	Model         string             `json:"model"`
	Probabilities map[string]float64 `json:"probabilities"`
	Explanation   string             `json:"explanation,omitempty"`
	Bias          float64            `json:"bias_margin"`
}

// appendDetails writes the details of one alert. keys are the classes,
// already quoted as JSON strings.
func appendDetails(buf []byte, model string, keys [][]byte, probs []float64, explained bool, bias float64) []byte {
	buf = append(buf, `{"model":"`...)
	buf = append(buf, model...) // hex digits: no escaping needed
	buf = append(buf, `","probabilities":{`...)
	for k, key := range keys {
		if k > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, key...)
		buf = append(buf, ':')
		buf = appendFloat(buf, probs[k])
	}
	buf = append(buf, '}')
	if explained {
		buf = append(buf, `,"explanation":"saabas","bias_margin":`...)
		buf = appendFloat(buf, bias)
	}
	return append(buf, '}')
}

// appendFloat writes v rounded to 6 decimals; JSON has no NaN or Inf, so
// those become null.
func appendFloat(buf []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(buf, "null"...)
	}
	return strconv.AppendFloat(buf, math.Round(v*1e6)/1e6, 'g', -1, 64)
}

func (d *detector) Detect(_ context.Context, b *sdk.FeatureBatch) ([]sdk.Alert, error) {
	st := d.state()
	d.batches.Add(1)
	if !slices.Contains(st.windows, b.Window) || len(b.Rows) == 0 {
		return nil, nil
	}
	s := newScoring(st, b)
	// The rows are scored in consecutive parts, one per core; the parts'
	// alerts are joined in part order, so they come in row order whatever
	// the number of cores.
	parts := max(1, min(runtime.GOMAXPROCS(0), len(b.Rows)/minRowsPerPart))
	results := make([]*scoredPart, parts)
	var wg sync.WaitGroup
	for p := 1; p < parts; p++ {
		wg.Go(func() { results[p] = s.score(p*len(b.Rows)/parts, (p+1)*len(b.Rows)/parts) })
	}
	results[0] = s.score(0, len(b.Rows)/parts)
	wg.Wait()
	return d.finish(s, results)
}

// minRowsPerPart keeps small batches on one goroutine: scoring a row
// takes several microseconds, starting a goroutine about one.
const minRowsPerPart = 32

// finish adds up the parts' counters and joins their alerts.
func (d *detector) finish(s *scoring, parts []*scoredPart) ([]sdk.Alert, error) {
	var alerts []sdk.Alert
	for _, p := range parts {
		d.skipped.Add(uint64(p.skipped))
		d.scored.Add(uint64(p.scored))
		if p.err != nil {
			return nil, fmt.Errorf("score %d rows of the %s batch: %w", p.scored, s.b.Window, p.err)
		}
		if alerts == nil {
			alerts = p.alerts
		} else {
			alerts = append(alerts, p.alerts...)
		}
	}
	d.alerts.Add(uint64(len(alerts)))
	return alerts, nil
}

// scoring scores rows of one batch with one configuration; score may run
// on several goroutines at once.
type scoring struct {
	st *state
	b  *sdk.FeatureBatch
	// cols[k] is the batch column of model feature k (-1: missing); when
	// prefix is set the model's features are the batch's first columns, in
	// order (the core projects batches onto the features Describe lists),
	// and a row's values are copied as they are.
	cols    []int
	prefix  bool
	packets int // column of packets_total, -1 if absent
}

// scoredPart is what scoring a range of rows gives.
type scoredPart struct {
	alerts          []sdk.Alert
	scored, skipped int
	err             error
}

func newScoring(st *state, b *sdk.FeatureBatch) *scoring {
	features := st.model.features
	s := &scoring{st: st, b: b, cols: make([]int, len(features)), packets: b.Index(sdk.FeaturePackets)}
	s.prefix = len(b.Names) >= len(features)
	for k, name := range features {
		s.cols[k] = b.Index(name)
		s.prefix = s.prefix && s.cols[k] == k
	}
	return s
}

// score scores rows [lo, hi) of the batch.
func (s *scoring) score(lo, hi int) *scoredPart {
	part := &scoredPart{}
	m := s.st.model
	nf, nc := len(m.features), len(m.classes)
	vals := make([]float64, 0, (hi-lo)*nf)
	rows := make([]int, 0, hi-lo)
	for i := lo; i < hi; i++ {
		v := s.b.Rows[i].Values
		// A window with no packets of the source's own (it was only seen
		// as a destination) is not scored: every class is about what a
		// source sends. Training drops these windows too.
		if s.packets >= 0 && s.packets < len(v) && v[s.packets] == 0 {
			part.skipped++
			continue
		}
		if s.prefix && len(v) >= nf {
			vals = append(vals, v[:nf]...)
		} else {
			for _, c := range s.cols {
				x := math.NaN()
				if c >= 0 && c < len(v) {
					x = v[c]
				}
				vals = append(vals, x)
			}
		}
		rows = append(rows, i)
	}
	part.scored = len(rows)
	if len(rows) == 0 {
		return part
	}
	probs := make([]float64, len(rows)*nc)
	if part.err = m.m.PredictDense(vals, probs); part.err != nil {
		return part
	}
	// Most rows raise no alert: find the ones that do first, then build
	// (and explain) only theirs.
	var raising []int
	for j := range rows {
		p := probs[j*nc : (j+1)*nc : (j+1)*nc]
		if top, _ := top2(p); top != m.benign && p[top] >= s.st.minScore {
			raising = append(raising, j)
		}
	}
	if len(raising) > 0 {
		part.alerts = make([]sdk.Alert, len(raising))
		for a, j := range raising {
			p := probs[j*nc : (j+1)*nc : (j+1)*nc]
			top, second := top2(p)
			part.alerts[a] = s.alert(rows[j], vals[j*nf:(j+1)*nf:(j+1)*nf], p, top, second)
		}
	}
	return part
}

// alert builds and explains the alert of batch row i, whose model inputs
// are row and class probabilities p.
func (s *scoring) alert(i int, row, p []float64, top, second int) sdk.Alert {
	st, m := s.st, s.st.model
	label := m.classes[top]
	a := sdk.NewAlert(i, label, p[top])
	a.Severity = st.severities[label]
	a.RunnerUp, a.RunnerUpScore = m.classes[second], p[second]
	bias := 0.0
	if st.topK > 0 {
		contrib := m.m.Contributions(row, top)
		a.TopFeatures = topFeatures(m.features, row, contrib, st.topK)
		bias = contrib[len(contrib)-1]
	}
	a.Details = appendDetails(make([]byte, 0, 128+32*len(p)), m.id, m.quoted, p, st.topK > 0, bias)
	return a
}

// top2 returns the indexes of the largest and second largest values.
func top2(p []float64) (int, int) {
	first, second := 0, -1
	for k := 1; k < len(p); k++ {
		switch {
		case p[k] > p[first]:
			first, second = k, first
		case second < 0 || p[k] > p[second]:
			second = k
		}
	}
	if second < 0 {
		second = first
	}
	return first, second
}

// topFeatures returns up to k features with the largest positive
// contributions to the predicted class's margin, strongest first (equal
// contributions in model order). It picks them one by one: k is small.
func topFeatures(names []string, row, contrib []float64, k int) []sdk.FeatureValue {
	out := make([]sdk.FeatureValue, 0, min(k, len(names)))
	taken := make([]bool, len(names))
	for len(out) < k {
		best := -1
		for i := range names {
			if !taken[i] && contrib[i] > 0 && (best < 0 || contrib[i] > contrib[best]) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		taken[best] = true
		out = append(out, sdk.FeatureValue{Name: names[best], Value: row[best], Weight: contrib[best]})
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Stats reports counters to the core's /api/health.
func (d *detector) Stats() sdk.Stats {
	st := d.state()
	return sdk.Stats{
		Healthy: true,
		Message: fmt.Sprintf("model %s (%s), %d classes", st.model.source, st.model.id, len(st.model.classes)),
		Counters: map[string]uint64{
			"batches": d.batches.Load(), "rows_scored": d.scored.Load(),
			"rows_skipped_no_packets": d.skipped.Load(), "alerts": d.alerts.Load(),
		},
	}
}
