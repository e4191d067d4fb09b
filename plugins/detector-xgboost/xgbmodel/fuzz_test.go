package xgbmodel

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"testing"
)

// FuzzLoad checks that arbitrary input never panics Load, and that any model
// it accepts can predict and explain without panicking.
func FuzzLoad(f *testing.F) {
	for _, name := range []string{"binary", "multiclass"} {
		data, err := os.ReadFile("testdata/" + name + "_model.json")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, doc := range []map[string]any{
		testModel("binary:logistic", 0, "5E-1", []int{0, 0}, stump(1, 1, true, -1, 1), leafTree(0.5)),
		testModel("multi:softprob", 2, "[1E-1,2E-1]", []int{1, 0}, stump(0, -3, false, 1, 2), leafTree(-1)),
	} {
		data, err := json.Marshal(doc)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"learner": {}}`))
	f.Add([]byte(`not json`))

	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Load(bytes.NewReader(data))
		if err != nil || m.NumFeatures() > 1<<12 {
			return
		}
		rows := [][]float64{make([]float64, m.NumFeatures()), make([]float64, m.NumFeatures())}
		for i := range rows[1] {
			rows[1][i] = math.NaN()
		}
		if _, err := m.PredictProba(rows); err != nil {
			t.Fatal(err)
		}
		for class := range m.NumClasses() {
			m.Contributions(rows[1], class)
		}
	})
}
