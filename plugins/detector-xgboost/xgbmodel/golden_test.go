package xgbmodel

import (
	"encoding/csv"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The testdata files are produced by training/golden.py with XGBoost 1.7.4;
// see training/README.md.

var goldenModels = []struct {
	name      string
	classes   int
	withNames bool
}{
	{"binary", 2, true},
	{"multiclass", 4, false},
}

const numGoldenFeatures = 8

// readCSV reads a CSV of floats with a header; empty cells are NaN.
func readCSV(t testing.TB, path string) [][]float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	out := make([][]float64, 0, len(recs)-1)
	for _, rec := range recs[1:] {
		row := make([]float64, len(rec))
		for i, s := range rec {
			if s == "" {
				row[i] = math.NaN()
				continue
			}
			if row[i], err = strconv.ParseFloat(s, 64); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
		}
		out = append(out, row)
	}
	return out
}

// goldenRows returns the evaluation rows and XGBoost's predict_proba.
func goldenRows(t testing.TB, name string) (rows, proba [][]float64) {
	for _, rec := range readCSV(t, "testdata/"+name+"_golden.csv") {
		rows = append(rows, rec[:numGoldenFeatures])
		proba = append(proba, rec[numGoldenFeatures:])
	}
	return rows, proba
}

func loadTestModel(t testing.TB, name string) *Model {
	t.Helper()
	m, err := LoadFile("testdata/" + name + "_model.json")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestGoldenPredictProba(t *testing.T) {
	for _, tc := range goldenModels {
		t.Run(tc.name, func(t *testing.T) {
			m := loadTestModel(t, tc.name)
			if m.NumFeatures() != numGoldenFeatures || m.NumClasses() != tc.classes {
				t.Fatalf("NumFeatures=%d NumClasses=%d, want %d, %d", m.NumFeatures(), m.NumClasses(), numGoldenFeatures, tc.classes)
			}
			if got := m.FeatureNames(); (got != nil) != tc.withNames || (got != nil && got[0] != "pkt_count") {
				t.Errorf("FeatureNames() = %v", got)
			}
			rows, want := goldenRows(t, tc.name)
			if len(rows) < 5000 {
				t.Fatalf("only %d golden rows", len(rows))
			}
			got, err := m.PredictProba(rows)
			if err != nil {
				t.Fatal(err)
			}
			maxDiff, worstRow, worstClass := 0.0, 0, 0
			for i := range rows {
				if len(got[i]) != tc.classes {
					t.Fatalf("row %d: %d probabilities, want %d", i, len(got[i]), tc.classes)
				}
				for k := range got[i] {
					if d := math.Abs(got[i][k] - want[i][k]); d > maxDiff || math.IsNaN(d) {
						maxDiff, worstRow, worstClass = d, i, k
					}
				}
			}
			t.Logf("%d rows x %d classes: max |go - xgboost| = %.3g (row %d, class %d)", len(rows), tc.classes, maxDiff, worstRow, worstClass)
			if !(maxDiff <= 1e-6) {
				t.Errorf("row %d class %d: go %v, xgboost %v", worstRow, worstClass, got[worstRow], want[worstRow])
			}
		})
	}
}

// PredictDense is leaves on one goroutine, PredictProba leaves on every
// core: the probabilities must be the same bits (and so XGBoost's, as
// TestGoldenPredictProba checks).
func TestGoldenPredictDense(t *testing.T) {
	for _, tc := range goldenModels {
		t.Run(tc.name, func(t *testing.T) {
			m := loadTestModel(t, tc.name)
			rows, _ := goldenRows(t, tc.name)
			want, err := m.PredictProba(rows)
			if err != nil {
				t.Fatal(err)
			}
			var vals []float64
			for _, r := range rows {
				vals = append(vals, r...)
			}
			got := make([]float64, len(rows)*tc.classes)
			if err := m.PredictDense(vals, got); err != nil {
				t.Fatal(err)
			}
			for i := range rows {
				for k := range tc.classes {
					if math.Float64bits(got[i*tc.classes+k]) != math.Float64bits(want[i][k]) {
						t.Fatalf("row %d: PredictDense %v, PredictProba %v", i, got[i*tc.classes:(i+1)*tc.classes], want[i])
					}
				}
			}
			t.Logf("%d rows: PredictDense bit for bit PredictProba", len(rows))
			if err := m.PredictDense(vals[:numGoldenFeatures+1], got[:2*tc.classes]); err == nil || !strings.Contains(err.Error(), "not whole rows") {
				t.Errorf("partial row: err = %v", err)
			}
			if err := m.PredictDense(vals[:2*numGoldenFeatures], got[:tc.classes]); err == nil || !strings.Contains(err.Error(), "room for") {
				t.Errorf("short probs: err = %v", err)
			}
		})
	}
}

// XGBoost's approx_contribs is the same Saabas walk; it accumulates in
// float32 and divides by the parent's own sum_hessian, hence the tolerance.
func TestGoldenContributions(t *testing.T) {
	for _, tc := range goldenModels {
		t.Run(tc.name, func(t *testing.T) {
			m := loadTestModel(t, tc.name)
			rows, _ := goldenRows(t, tc.name)
			maxDiff := 0.0
			for _, rec := range readCSV(t, "testdata/"+tc.name+"_contribs.csv") {
				row, class := int(rec[0]), int(rec[1])
				if tc.classes == 2 {
					class = 1 // XGBoost explains the single (class 1) margin
				}
				got := m.Contributions(rows[row], class)
				want := rec[2:]
				for i := range want {
					maxDiff = max(maxDiff, math.Abs(got[i]-want[i]))
				}
			}
			t.Logf("max |go - xgboost approx_contribs| = %.3g", maxDiff)
			if maxDiff > 1e-5 {
				t.Errorf("contributions differ from XGBoost by %g", maxDiff)
			}
		})
	}
}

func TestContributionsSumToMargin(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range goldenModels {
		t.Run(tc.name, func(t *testing.T) {
			m := loadTestModel(t, tc.name)
			rawEns := m.ens.EnsembleWithRawPredictions()
			rows, _ := goldenRows(t, tc.name)
			margin := make([]float64, rawEns.NOutputGroups())
			for range 500 {
				row := slices.Clone(rows[rng.IntN(len(rows))])
				for j := range row {
					switch rng.IntN(4) {
					case 0:
						row[j] = math.NaN()
					case 1:
						row[j] = rng.NormFloat64() * 100
					}
				}
				if err := rawEns.Predict(row, 0, margin); err != nil {
					t.Fatal(err)
				}
				for class := range m.NumClasses() {
					c := m.Contributions(row, class)
					if len(c) != m.NumFeatures()+1 {
						t.Fatalf("len = %d, want %d", len(c), m.NumFeatures()+1)
					}
					want := margin[min(class, len(margin)-1)]
					if tc.classes == 2 && class == 0 {
						want = -want
					}
					var sum float64
					for _, v := range c {
						sum += v
					}
					if math.Abs(sum-want) > 1e-9*max(1, math.Abs(want)) {
						t.Fatalf("class %d: sum of contributions %v, margin %v (row %v)", class, sum, want, row)
					}
				}
			}
		})
	}
}

// BenchmarkPredictProba scores 1024-row batches of the golden models and
// of the model the detector ships (its golden windows, cycled).
// PredictProba runs leaves on every core (its 16-row tasks); /dense is
// PredictDense, leaves on one goroutine.
// cpu-ns/row (getrusage) is the steadier figure on a shared machine.
func BenchmarkPredictProba(b *testing.B) {
	type bench struct {
		name string
		m    *Model
		rows [][]float64
	}
	var benches []bench
	for _, tc := range goldenModels {
		rows, _ := goldenRows(b, tc.name)
		benches = append(benches, bench{tc.name, loadTestModel(b, tc.name), rows[:1024]})
	}
	shipped, err := LoadFile("../model/xgboost_model.json")
	if err != nil {
		b.Fatal(err)
	}
	var rows [][]float64
	for all := shippedRows(b, shipped); len(rows) < 1024; {
		rows = append(rows, all[len(rows)%len(all)])
	}
	benches = append(benches, bench{"shipped", shipped, rows})
	for _, bc := range benches {
		b.Run(bc.name, func(b *testing.B) {
			cpu0 := cpuTime(b)
			for b.Loop() {
				if _, err := bc.m.PredictProba(bc.rows); err != nil {
					b.Fatal(err)
				}
			}
			n := float64(b.N * len(bc.rows))
			b.ReportMetric(n/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(cpuTime(b)-cpu0)/n, "cpu-ns/row")
		})
		b.Run(bc.name+"/dense", func(b *testing.B) {
			var vals []float64
			for _, r := range bc.rows {
				vals = append(vals, r...)
			}
			probs := make([]float64, len(bc.rows)*bc.m.NumClasses())
			cpu0 := cpuTime(b)
			for b.Loop() {
				if err := bc.m.PredictDense(vals, probs); err != nil {
					b.Fatal(err)
				}
			}
			n := float64(b.N * len(bc.rows))
			b.ReportMetric(n/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(cpuTime(b)-cpu0)/n, "cpu-ns/row")
		})
	}
}

// cpuTime is the CPU time this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// shippedRows reads the detector's golden windows (../testdata/windows.csv)
// as rows of m, which must be the shipped model.
func shippedRows(tb testing.TB, m *Model) [][]float64 {
	tb.Helper()
	recs := readCSVRecords(tb, "../testdata/windows.csv")
	col := map[string]int{}
	for i, n := range recs[0] {
		col[n] = i
	}
	var rows [][]float64
	for _, r := range recs[1:] {
		row := make([]float64, m.numFeatures)
		for k, n := range m.featureNames {
			c, ok := col[n]
			if !ok {
				tb.Fatalf("windows.csv has no column %q", n)
			}
			row[k] = math.NaN()
			if r[c] != "" {
				v, err := strconv.ParseFloat(r[c], 64)
				if err != nil {
					tb.Fatal(err)
				}
				row[k] = v
			}
		}
		rows = append(rows, row)
	}
	return rows
}

func readCSVRecords(tb testing.TB, path string) [][]string {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil || len(recs) < 2 {
		tb.Fatalf("%s: %v (%d records)", path, err, len(recs))
	}
	return recs
}
