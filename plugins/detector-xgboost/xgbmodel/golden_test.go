package xgbmodel

import (
	"encoding/csv"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
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

func BenchmarkPredictProba(b *testing.B) {
	for _, tc := range goldenModels {
		b.Run(tc.name, func(b *testing.B) {
			m := loadTestModel(b, tc.name)
			rows, _ := goldenRows(b, tc.name)
			batch := rows[:1024]
			for b.Loop() {
				if _, err := m.PredictProba(batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
