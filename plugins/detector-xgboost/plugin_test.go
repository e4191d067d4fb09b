package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netguardian/netguardian/sdk"
)

// The tests talk to the real plugin process over the plugin protocol, the
// way the core does: TestMain builds the binary once.
var pluginPath string

func TestMain(m *testing.M) {
	abs, err := filepath.Abs(filepath.Join("tmp", "detector-xgboost"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pluginPath = abs
	build := exec.Command("go", "build", "-o", pluginPath, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build detector-xgboost:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// launch starts the plugin process; env adds to its environment.
func launch(tb testing.TB, env ...string) *sdk.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := sdk.Launch(ctx, sdk.LaunchOptions{Path: pluginPath, Env: append([]string{"PATH=" + os.Getenv("PATH")}, env...)})
	if err != nil {
		tb.Fatalf("launch: %v", err)
	}
	tb.Cleanup(c.Kill)
	return c
}

func configure(tb testing.TB, c *sdk.Conn, cfg map[string]any) error {
	tb.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return c.Configure(ctx, sdk.Config{JSON: b, Runtime: sdk.Runtime{Sensor: "test"}})
}

// embeddedLabels reads the shipped labels.json.
func embeddedLabels(tb testing.TB) labelsFile {
	tb.Helper()
	b, err := os.ReadFile("model/labels.json")
	if err != nil {
		tb.Fatal(err)
	}
	var lf labelsFile
	if err := json.Unmarshal(b, &lf); err != nil {
		tb.Fatal(err)
	}
	return lf
}

func TestDescribe(t *testing.T) {
	c := launch(t)
	ctx := context.Background()
	info, err := c.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lf := embeddedLabels(t)
	if info.Name != "detector-xgboost" || info.Kind != sdk.KindDetector {
		t.Fatalf("name/kind = %q/%q", info.Name, info.Kind)
	}
	want := slices.Clone(lf.FeatureNames)
	if !slices.Contains(want, sdk.FeaturePackets) {
		want = append(want, sdk.FeaturePackets)
	}
	if !slices.Equal(info.Features, want) {
		t.Errorf("features = %v, want the embedded model's %v", info.Features, want)
	}
	for _, f := range info.Features {
		if !sdk.KnownFeature(f) {
			t.Errorf("feature %q is not an sdk feature", f)
		}
	}
	if !slices.Equal(info.Windows, []time.Duration{30 * time.Second, 180 * time.Second}) {
		t.Errorf("windows = %v, want [30s 3m0s]", info.Windows)
	}
	var wantLabels []string
	for _, c := range lf.Classes {
		if c != lf.Benign {
			wantLabels = append(wantLabels, c)
		}
	}
	if !slices.Equal(info.Labels, wantLabels) {
		t.Errorf("labels = %v, want %v", info.Labels, wantLabels)
	}
	types := map[string]sdk.AttrType{
		"model": sdk.TypeString, "labels": sdk.TypeString, "min_score": sdk.TypeNumber,
		"severities": sdk.TypeMapString, "windows": sdk.TypeListNumber, "top_features": sdk.TypeNumber,
	}
	for name, typ := range types {
		a, ok := info.Config.Lookup(name)
		if !ok {
			t.Errorf("schema lacks %q", name)
			continue
		}
		if a.Type != typ || a.Required || a.Description == "" {
			t.Errorf("schema %q = %+v, want optional %s with a description", name, a, typ)
		}
	}
	if a, _ := info.Config.Lookup("min_score"); a.Default != defaultMinScore {
		t.Errorf("min_score default = %v, want %v", a.Default, defaultMinScore)
	}
	if len(info.Config) != len(types) {
		t.Errorf("schema has %d attributes, want %d", len(info.Config), len(types))
	}
}

// The default threshold must be the one the training report chose.
func TestDefaultMinScoreMatchesReport(t *testing.T) {
	lf := embeddedLabels(t)
	if lf.MinScore != defaultMinScore {
		t.Fatalf("model/labels.json recommends min_score %v but the plugin's default is %v; update defaultMinScore after retraining", lf.MinScore, defaultMinScore)
	}
	report, err := os.ReadFile("model/REPORT.md")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("`min_score` = **%.2f**", defaultMinScore); !strings.Contains(string(report), want) {
		t.Fatalf("model/REPORT.md does not state %s", want)
	}
}

func TestConfigureAndDescribeAgain(t *testing.T) {
	c := launch(t)
	if err := configure(t, c, map[string]any{"windows": []float64{180}, "min_score": 0.9}); err != nil {
		t.Fatal(err)
	}
	info, err := c.Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(info.Windows, []time.Duration{180 * time.Second}) {
		t.Fatalf("windows after Configure = %v, want [3m0s]", info.Windows)
	}
}

// copyModel copies the shipped model and labels into a temporary folder.
func copyModel(t *testing.T) (dir, model, labels string) {
	t.Helper()
	dir = t.TempDir()
	model, labels = filepath.Join(dir, "xgboost_model.json"), filepath.Join(dir, "labels.json")
	for src, dst := range map[string]string{"model/xgboost_model.json": model, "model/labels.json": labels} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, model, labels
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigureModelFromPath(t *testing.T) {
	_, model, _ := copyModel(t)
	c := launch(t)
	// labels.json is found next to the model.
	if err := configure(t, c, map[string]any{"model": model}); err != nil {
		t.Fatal(err)
	}
}

func TestConfigureErrors(t *testing.T) {
	dir, model, labels := copyModel(t)
	full, err := os.ReadFile(model)
	if err != nil {
		t.Fatal(err)
	}
	truncated := writeFile(t, dir, "truncated.json", full[:len(full)/2])
	notXGB := writeFile(t, dir, "not-xgboost.json", []byte(`{"name": "a JSON file that is no model", "trees": []}`))
	binary := writeFile(t, dir, "model.bin", []byte{0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0})
	empty := writeFile(t, dir, "empty.json", nil)
	missing := filepath.Join(dir, "no-such-model.json")

	lf := embeddedLabels(t)
	three, _ := json.Marshal(labelsFile{Classes: lf.Classes[:3], Benign: lf.Benign})
	threeLabels := writeFile(t, dir, "three.json", three)
	noBenign, _ := json.Marshal(labelsFile{Classes: lf.Classes, Benign: "benign"})
	noBenignLabels := writeFile(t, dir, "nobenign.json", noBenign)

	// A model with feature names the SDK does not know (xgbmodel's golden
	// binary model: pkt_count, byte_count...).
	foreign, err := filepath.Abs("xgbmodel/testdata/binary_model.json")
	if err != nil {
		t.Fatal(err)
	}
	// A model with no labels.json next to it.
	lonely := writeFile(t, t.TempDir(), "lonely.json", full)
	foreignLabels := writeFile(t, dir, "foreign.json", []byte(`{"classes": ["benign", "attack"], "benign": "benign"}`))

	cases := []struct {
		name string
		cfg  map[string]any
		want []string // every piece must appear in the error
	}{
		{"missing model", map[string]any{"model": missing, "labels": labels}, []string{missing, "does not exist"}},
		{"truncated model", map[string]any{"model": truncated, "labels": labels}, []string{truncated, "not valid JSON"}},
		{"not an XGBoost model", map[string]any{"model": notXGB, "labels": labels}, []string{notXGB, "not a usable XGBoost model"}},
		{"binary file", map[string]any{"model": binary, "labels": labels}, []string{binary, "not valid JSON"}},
		{"empty model", map[string]any{"model": empty, "labels": labels}, []string{empty, "empty"}},
		{"missing labels", map[string]any{"model": model, "labels": filepath.Join(dir, "nope.json")}, []string{"nope.json", "does not exist"}},
		{"no labels next to model", map[string]any{"model": lonely}, []string{lonely, "labels.json", "does not exist"}},
		{"class count", map[string]any{"model": model, "labels": threeLabels}, []string{threeLabels, "3 classes", model, "10 outputs"}},
		{"benign not a class", map[string]any{"model": model, "labels": noBenignLabels}, []string{`benign class "benign"`}},
		{"unknown features", map[string]any{"model": foreign, "labels": foreignLabels}, []string{foreign, `"pkt_count"`, "not a NetGuardian feature"}},
		{"labels without model", map[string]any{"labels": labels}, []string{"labels", "only together with model"}},
		{"min_score too high", map[string]any{"min_score": 1.5}, []string{"min_score", "1.5"}},
		{"min_score zero", map[string]any{"min_score": 0}, []string{"min_score"}},
		{"bad severity", map[string]any{"severities": map[string]string{"syn_flood": "urgent"}}, []string{"severities", "urgent", "syn_flood"}},
		{"severity of unknown label", map[string]any{"severities": map[string]string{"ddos": "high"}}, []string{"severities", `"ddos"`}},
		{"window not computed", map[string]any{"windows": []float64{60}}, []string{"windows", "60"}},
		{"no windows", map[string]any{"windows": []float64{}}, []string{"windows"}},
		{"negative top_features", map[string]any{"top_features": -1}, []string{"top_features"}},
		{"wrong type", map[string]any{"min_score": "high"}, []string{"min_score"}},
	}
	c := launch(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := configure(t, c, tc.cfg)
			if err == nil {
				t.Fatal("Configure succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	// The process survived every bad config and still works.
	if err := configure(t, c, map[string]any{}); err != nil {
		t.Fatalf("good config after bad ones: %v", err)
	}
}

// golden is one row of testdata/windows.csv: a window of a held-out lab
// capture, with XGBoost's own probabilities for the shipped model.
type golden struct {
	class, decision string
	window          time.Duration
	probs           []float64
	values          map[string]float64
}

func loadGolden(tb testing.TB) (names []string, rows []golden) {
	tb.Helper()
	f, err := os.Open("testdata/windows.csv")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		tb.Fatal(err)
	}
	lf := embeddedLabels(tb)
	head := recs[0]
	np := len(lf.Classes)
	names = head[3+np:]
	for _, r := range recs[1:] {
		w, _ := strconv.Atoi(r[1])
		g := golden{class: r[0], decision: r[2], window: time.Duration(w) * time.Second, values: map[string]float64{}}
		for k := 0; k < np; k++ {
			p, err := strconv.ParseFloat(r[3+k], 64)
			if err != nil {
				tb.Fatal(err)
			}
			g.probs = append(g.probs, p)
		}
		for k, n := range names {
			v := math.NaN()
			if s := r[3+np+k]; s != "" {
				if v, err = strconv.ParseFloat(s, 64); err != nil {
					tb.Fatal(err)
				}
			}
			g.values[n] = v
		}
		rows = append(rows, g)
	}
	if len(rows) == 0 {
		tb.Fatal("testdata/windows.csv has no rows")
	}
	return names, rows
}

// batchOf builds a FeatureBatch of window w from rows, with the features in
// the reverse of the CSV's order (the plugin must map them by name).
func batchOf(names []string, rows []golden, w time.Duration) *sdk.FeatureBatch {
	rev := slices.Clone(names)
	slices.Reverse(rev)
	b := &sdk.FeatureBatch{Sensor: "test", Window: w, SchemaVersion: sdk.FeatureSchemaVersion, Names: rev}
	start := time.Unix(1795640000, 0)
	for i, g := range rows {
		vals := make([]float64, len(rev))
		for k, n := range rev {
			vals[k] = g.values[n]
		}
		b.Rows = append(b.Rows, sdk.FeatureRow{
			Src: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), Start: start, End: start.Add(w), Values: vals,
		})
	}
	return b
}

func TestDetectGolden(t *testing.T) {
	names, rows := loadGolden(t)
	lf := embeddedLabels(t)
	c := launch(t)
	if err := configure(t, c, map[string]any{}); err != nil {
		t.Fatal(err)
	}
	for _, w := range []time.Duration{30 * time.Second, 180 * time.Second} {
		var sel []golden
		for _, g := range rows {
			if g.window == w {
				sel = append(sel, g)
			}
		}
		alerts, err := c.Detect(context.Background(), batchOf(names, sel, w))
		if err != nil {
			t.Fatal(err)
		}
		byRow := map[int]sdk.Alert{}
		for _, a := range alerts {
			if _, dup := byRow[a.Row]; dup {
				t.Fatalf("two alerts for row %d", a.Row)
			}
			byRow[a.Row] = a
		}
		detected := map[string]bool{}
		for i, g := range sel {
			a, ok := byRow[i]
			// The plugin's decision must be XGBoost's (same model, same threshold).
			if g.decision == lf.Benign {
				if ok {
					t.Errorf("%s row %d (%s): unexpected alert %s %.4f", w, i, g.class, a.Label, a.Score)
				}
				continue
			}
			if !ok {
				t.Errorf("%s row %d (%s): no alert, XGBoost decides %s", w, i, g.class, g.decision)
				continue
			}
			k := slices.Index(lf.Classes, a.Label)
			if a.Label != g.decision || math.Abs(a.Score-g.probs[k]) > 1e-5 {
				t.Errorf("%s row %d: alert %s %.6f, XGBoost %s %.6f", w, i, a.Label, a.Score, g.decision, g.probs[k])
			}
			checkAlert(t, a, lf)
			if a.Label == g.class {
				detected[g.class] = true
			}
		}
		// The shipped model must catch every attack class of the held-out
		// test captures in at least one of their windows.
		if w == 30*time.Second {
			for _, cl := range lf.Classes {
				if cl == lf.Benign {
					continue
				}
				has := slices.ContainsFunc(sel, func(g golden) bool { return g.class == cl })
				if has && !detected[cl] {
					t.Errorf("30s: no %s window of the test captures raised a %s alert", cl, cl)
				}
			}
		}
	}
}

func checkAlert(t *testing.T, a sdk.Alert, lf labelsFile) {
	t.Helper()
	if a.Severity != sdk.Severity(defaultSeverities[a.Label]) {
		t.Errorf("%s: severity %s, want %s", a.Label, a.Severity, defaultSeverities[a.Label])
	}
	if a.RunnerUp == a.Label || !slices.Contains(lf.Classes, a.RunnerUp) || a.RunnerUpScore > a.Score {
		t.Errorf("%s: runner-up %s %.4f", a.Label, a.RunnerUp, a.RunnerUpScore)
	}
	if len(a.TopFeatures) == 0 || len(a.TopFeatures) > 5 {
		t.Errorf("%s: %d top features, want 1..5", a.Label, len(a.TopFeatures))
	}
	for j, f := range a.TopFeatures {
		if !slices.Contains(lf.FeatureNames, f.Name) || f.Weight <= 0 || (j > 0 && f.Weight > a.TopFeatures[j-1].Weight) {
			t.Errorf("%s: top feature %d = %+v (want a model feature, positive weight, strongest first)", a.Label, j, f)
		}
	}
	var det details
	if err := json.Unmarshal(a.Details, &det); err != nil {
		t.Fatalf("details %s: %v", a.Details, err)
	}
	sum := 0.0
	for _, p := range det.Probabilities {
		sum += p
	}
	if len(det.Probabilities) != len(lf.Classes) || math.Abs(sum-1) > 1e-4 || math.Abs(det.Probabilities[a.Label]-a.Score) > 1e-5 {
		t.Errorf("%s: details probabilities %v", a.Label, det.Probabilities)
	}
	if det.Explanation != "saabas" {
		t.Errorf("details explanation = %q", det.Explanation)
	}
}

// attackRow returns a golden 30s row the model flags, and its label.
func attackRow(t *testing.T, rows []golden) golden {
	t.Helper()
	for _, g := range rows {
		if g.window == 30*time.Second && g.decision == g.class && g.class == "syn_flood" {
			return g
		}
	}
	for _, g := range rows {
		if g.window == 30*time.Second && g.decision != "normal" {
			return g
		}
	}
	t.Fatal("no flagged 30s row in testdata/windows.csv")
	return golden{}
}

func TestDetectSettings(t *testing.T) {
	names, rows := loadGolden(t)
	g := attackRow(t, rows)
	c := launch(t)
	ctx := context.Background()
	detect := func(b *sdk.FeatureBatch) []sdk.Alert {
		t.Helper()
		a, err := c.Detect(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	if err := configure(t, c, map[string]any{"severities": map[string]string{g.decision: "critical"}, "top_features": 2}); err != nil {
		t.Fatal(err)
	}
	a := detect(batchOf(names, []golden{g}, 30*time.Second))
	if len(a) != 1 || a[0].Label != g.decision || a[0].Severity != sdk.SeverityCritical || len(a[0].TopFeatures) > 2 {
		t.Fatalf("alerts = %+v, want one %s alert, critical, <= 2 features", a, g.decision)
	}
	// 5s windows are not subscribed: no scoring.
	if a := detect(batchOf(names, []golden{g}, 5*time.Second)); len(a) != 0 {
		t.Errorf("5s batch gave %d alerts", len(a))
	}
	// A window without packets of its own is skipped.
	quiet := g
	quiet.values = map[string]float64{}
	for k, v := range g.values {
		quiet.values[k] = v
	}
	quiet.values[sdk.FeaturePackets] = 0
	if a := detect(batchOf(names, []golden{quiet}, 30*time.Second)); len(a) != 0 {
		t.Errorf("packets_total = 0 gave %d alerts", len(a))
	}
	// A batch lacking every feature is scored with all values missing and
	// does not fail.
	empty := &sdk.FeatureBatch{Window: 30 * time.Second, Names: []string{"something_else"}, Rows: []sdk.FeatureRow{{Values: []float64{1}}}}
	detect(empty)
	// A threshold above every score silences the alert.
	if err := configure(t, c, map[string]any{"min_score": 1}); err != nil {
		t.Fatal(err)
	}
	if a := detect(batchOf(names, []golden{g}, 30*time.Second)); len(a) != 0 && a[0].Score < 1 {
		t.Errorf("min_score 1 still alerts: %+v", a)
	}
	st, err := c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Counters["rows_skipped_no_packets"] != 1 || st.Counters["rows_scored"] < 3 || st.Counters["alerts"] < 1 {
		t.Errorf("counters = %v", st.Counters)
	}
}

func TestTop2(t *testing.T) {
	for _, tc := range []struct {
		p    []float64
		a, b int
	}{
		{[]float64{0.1, 0.7, 0.2}, 1, 2},
		{[]float64{0.7, 0.1, 0.2}, 0, 2},
		{[]float64{0.2, 0.1, 0.7}, 2, 0},
		{[]float64{0.5, 0.5}, 0, 1},
	} {
		if a, b := top2(tc.p); a != tc.a || b != tc.b {
			t.Errorf("top2(%v) = %d, %d, want %d, %d", tc.p, a, b, tc.a, tc.b)
		}
	}
}

// alertsText renders alerts exactly (floats in their shortest exact form,
// NaN included) for comparisons.
func alertsText(alerts []sdk.Alert) string {
	var b strings.Builder
	for _, a := range alerts {
		d := a.Details
		a.Details = nil
		fmt.Fprintf(&b, "%+v %s\n", a, d)
	}
	return b.String()
}

// Detect scores a batch in parts, one per core: whatever the number of
// parts, the alerts are those of scoring every row on its own, in row
// order.
func TestDetectInPartsEqualsRowByRow(t *testing.T) {
	names, rows := loadGolden(t)
	var sel []golden
	quiet := 0
	for i := 0; len(sel) < 700; i++ {
		g := rows[i%len(rows)]
		if i%9 == 4 { // some rows the plugin skips
			g.values = maps.Clone(g.values)
			g.values[sdk.FeaturePackets] = 0
			quiet++
		}
		sel = append(sel, g)
	}
	batch := batchOf(names, sel, 30*time.Second)
	d := newDetector(func(err error) { t.Error(err) })
	ctx := context.Background()
	var want []sdk.Alert
	for i := range batch.Rows {
		one := *batch
		one.Rows = batch.Rows[i : i+1]
		a, err := d.Detect(ctx, &one)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range a {
			x.Row = i
			want = append(want, x)
		}
	}
	if len(want) == 0 {
		t.Fatal("no row raised an alert")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, procs := range []int{1, 2, 3, 8} {
		runtime.GOMAXPROCS(procs)
		got, err := d.Detect(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		if g, w := alertsText(got), alertsText(want); g != w {
			t.Fatalf("GOMAXPROCS=%d: %d alerts differ from scoring row by row (%d alerts)", procs, len(got), len(want))
		}
		t.Logf("GOMAXPROCS=%d: %d rows in %d parts, %d alerts, same as row by row", procs, len(batch.Rows), max(1, min(procs, len(batch.Rows)/minRowsPerPart)), len(got))
	}
	// Five scorings of the batch: row by row, then four in parts.
	if got, want := d.Stats().Counters["rows_skipped_no_packets"], uint64(5*quiet); got != want {
		t.Errorf("rows_skipped_no_packets = %d, want %d", got, want)
	}
}

// topFeatures picks what a stable sort by contribution, strongest first,
// cut at k and at the first non-positive contribution, would.
func TestTopFeatures(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	names := make([]string, 12)
	for i := range names {
		names[i] = fmt.Sprintf("f%d", i)
	}
	row := make([]float64, len(names))
	for trial := range 2000 {
		contrib := make([]float64, len(names))
		for i := range contrib {
			contrib[i] = float64(rng.IntN(7) - 3) // ties, zeros, negatives
		}
		k := rng.IntN(len(names) + 2)
		order := make([]int, len(names))
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(a, b int) bool { return contrib[order[a]] > contrib[order[b]] })
		var want []sdk.FeatureValue
		for _, i := range order {
			if len(want) == k || contrib[i] <= 0 {
				break
			}
			want = append(want, sdk.FeatureValue{Name: names[i], Value: row[i], Weight: contrib[i]})
		}
		if got := topFeatures(names, row, contrib, k); !slices.Equal(got, want) {
			t.Fatalf("trial %d, k=%d, contributions %v: got %v, want %v", trial, k, contrib, got, want)
		}
	}
}

// benchBatches are the batches the Detect benchmarks score:
//   - golden: 1024 rows cycling through testdata/windows.csv; four in five
//     raise an alert, so explanations weigh in;
//   - benign: 1024 rows cycling through its normal windows, no alerts (what
//     most windows of real traffic look like);
//   - capture: with NG_BENCH_FEATURES_CSV set to a file written by
//     `netguardian analyze -features-csv`, the file's 30 s windows in one
//     batch, as the core sends them when a window closes (e.g. the ~4,350
//     sources of the pcapgen benchmark capture).
func benchBatches(b *testing.B) []struct {
	name  string
	batch *sdk.FeatureBatch
} {
	names, rows := loadGolden(b)
	cycle := func(sel []golden) []golden {
		var out []golden
		for len(out) < 1024 {
			out = append(out, sel[len(out)%len(sel)])
		}
		return out
	}
	var benign []golden
	for _, g := range rows {
		if g.decision == "normal" {
			benign = append(benign, g)
		}
	}
	out := []struct {
		name  string
		batch *sdk.FeatureBatch
	}{
		{"golden", batchOf(names, cycle(rows), 30*time.Second)},
		{"benign", batchOf(names, cycle(benign), 30*time.Second)},
	}
	if path := os.Getenv("NG_BENCH_FEATURES_CSV"); path != "" {
		out = append(out, struct {
			name  string
			batch *sdk.FeatureBatch
		}{"capture", featuresCSVBatch(b, path, 30*time.Second)})
	}
	return out
}

// featuresCSVBatch reads the windows of size w from a CSV written by
// `netguardian analyze -features-csv`.
func featuresCSVBatch(b *testing.B, path string, w time.Duration) *sdk.FeatureBatch {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		b.Fatalf("%s: %v", path, err)
	}
	const first = 7 // sensor,window_s,src,start,end,partial,estimated
	if len(recs) < 2 || len(recs[0]) <= first || recs[0][1] != "window_s" {
		b.Fatalf("%s: not a -features-csv file", path)
	}
	batch := &sdk.FeatureBatch{Sensor: "bench", Window: w, SchemaVersion: sdk.FeatureSchemaVersion, Names: recs[0][first:]}
	want := strconv.Itoa(int(w / time.Second))
	for _, r := range recs[1:] {
		if r[1] != want {
			continue
		}
		vals := make([]float64, len(r)-first)
		for k, s := range r[first:] {
			vals[k] = math.NaN()
			if s != "" {
				if vals[k], err = strconv.ParseFloat(s, 64); err != nil {
					b.Fatalf("%s: %v", path, err)
				}
			}
		}
		src, _ := netip.ParseAddr(r[2])
		batch.Rows = append(batch.Rows, sdk.FeatureRow{Src: src, Values: vals})
	}
	if len(batch.Rows) == 0 {
		b.Fatalf("%s has no %s windows", path, w)
	}
	return batch
}

// selfCPU is the CPU time this process has used.
func selfCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processCPU is the CPU time process pid has used, from /proc (10 ms
// ticks); false where there is no /proc.
func processCPU(pid int) (time.Duration, bool) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// utime and stime are fields 14 and 15 of the line, 12 and 13 after
	// the parenthesized command name.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond, err1 == nil && err2 == nil
}

// BenchmarkDetectThroughPlugin scores the benchBatches through the plugin
// process (gRPC and batch conversion included). It reports the wall rate
// and the CPU time per row of the plugin process and of this (core) side;
// on a shared machine the CPU figures are the steadier ones.
// NETGUARDIAN_PLUGIN_CPUPROFILE=FILE profiles the plugin process.
func BenchmarkDetectThroughPlugin(b *testing.B) {
	for _, bb := range benchBatches(b) {
		b.Run(bb.name, func(b *testing.B) {
			c := launch(b, "NETGUARDIAN_PLUGIN_CPUPROFILE="+os.Getenv("NETGUARDIAN_PLUGIN_CPUPROFILE"))
			if err := configure(b, c, map[string]any{}); err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			alerts := 0
			b.ResetTimer()
			plugin0, procOK := processCPU(c.PID())
			self0 := selfCPU(b)
			for i := 0; i < b.N; i++ {
				a, err := c.Detect(ctx, bb.batch)
				if err != nil {
					b.Fatal(err)
				}
				alerts = len(a)
			}
			rows := float64(b.N * len(bb.batch.Rows))
			b.ReportMetric(rows/b.Elapsed().Seconds(), "rows/s")
			if plugin1, ok := processCPU(c.PID()); ok && procOK {
				b.ReportMetric(float64(plugin1-plugin0)/rows, "plugin-cpu-ns/row")
			}
			b.ReportMetric(float64(selfCPU(b)-self0)/rows, "core-cpu-ns/row")
			b.ReportMetric(float64(alerts), "alerts/batch")
		})
	}
}

// BenchmarkDetectInProcess is the same work without the process boundary:
// the difference to BenchmarkDetectThroughPlugin is the cost of gRPC.
func BenchmarkDetectInProcess(b *testing.B) {
	for _, bb := range benchBatches(b) {
		b.Run(bb.name, func(b *testing.B) {
			d := newDetector(func(err error) { b.Error(err) })
			ctx := context.Background()
			alerts := 0
			b.ResetTimer()
			cpu0 := selfCPU(b)
			for i := 0; i < b.N; i++ {
				a, err := d.Detect(ctx, bb.batch)
				if err != nil {
					b.Fatal(err)
				}
				alerts = len(a)
			}
			rows := float64(b.N * len(bb.batch.Rows))
			b.ReportMetric(rows/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(selfCPU(b)-cpu0)/rows, "cpu-ns/row")
			b.ReportMetric(float64(alerts), "alerts/batch")
		})
	}
}
