package xgbmodel

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// xgbGoesLeft is XGBoost's split rule for a non-missing value.
func xgbGoesLeft(x float64, c float32) bool { return float32(x) < c }

func TestFloat32RoundingOracle(t *testing.T) {
	// The tests below use Go's float64->float32 conversion as the model of
	// XGBoost's; both round to nearest, ties to even.
	for _, tc := range []struct {
		x    float64
		want float32
	}{
		{1 - 0x1p-25, 1},               // tie between odd 1-2^-24 and even 1
		{1 + 0x1p-24, 1},               // tie between even 1 and odd 1+2^-23
		{1 + 3*0x1p-24, 1 + 2*0x1p-23}, // tie between odd and even
		{-(math.MaxFloat32 + 0x1p103), float32(math.Inf(-1))}, // overflow tie
	} {
		if got := float32(tc.x); got != tc.want {
			t.Errorf("float32(%v) = %v, want %v", tc.x, got, tc.want)
		}
	}
}

func TestLGBThreshold(t *testing.T) {
	minSub := math.Float32frombits(1)
	cases := []float32{
		1, 2, 3, 100, 1000, 65535, 1 << 24, 1<<24 + 2, 1e9,
		0.5, 0.1, 1e-3, 1.5e-7, 1 + 0x1p-23,
		-1, -2, -2.5, -100, -0.1,
		0, float32(math.Copysign(0, -1)), minSub, -minSub, 0x1p-126, 1e-40,
		math.MaxFloat32, -math.MaxFloat32, -math.MaxFloat32 + 0x1p104,
	}
	for _, c := range cases {
		T := lgbThreshold(c)
		p := math.Nextafter32(c, float32(math.Inf(-1)))
		n := math.Nextafter32(c, float32(math.Inf(1)))
		xs := []float64{float64(c), float64(p), float64(n), T, math.Nextafter(T, math.Inf(1))}
		for _, m := range []float64{(float64(p) + float64(c)) / 2, (float64(c) + float64(n)) / 2} {
			xs = append(xs, m, math.Nextafter(m, math.Inf(-1)), math.Nextafter(m, math.Inf(1)))
		}
		for _, x := range xs {
			if math.IsInf(x, 0) || math.IsNaN(x) {
				continue
			}
			if got, want := x <= T, xgbGoesLeft(x, c); got != want {
				t.Errorf("c=%v (T=%v): x=%v goes left=%v, XGBoost left=%v", c, T, x, got, want)
			}
		}
		// T is tight: T itself goes left, the next float64 goes right.
		if !xgbGoesLeft(T, c) || xgbGoesLeft(math.Nextafter(T, math.Inf(1)), c) {
			t.Errorf("c=%v: T=%v is not the exact boundary", c, T)
		}
	}

	// Both tie directions, spelled out.
	if got, want := lgbThreshold(1), math.Nextafter(1-0x1p-25, 0); got != want {
		t.Errorf("lgbThreshold(1) = %v, want %v (midpoint rounds up to even 1)", got, want)
	}
	if got, want := lgbThreshold(1+0x1p-23), 1+0x1p-24; got != want {
		t.Errorf("lgbThreshold(1+2^-23) = %v, want %v (midpoint rounds down to even 1)", got, want)
	}
}

func TestLGBThresholdRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 100000 {
		c := math.Float32frombits(rng.Uint32())
		if math.IsNaN(float64(c)) || math.IsInf(float64(c), 0) {
			continue
		}
		T := lgbThreshold(c)
		for _, x := range []float64{T, math.Nextafter(T, math.Inf(1)), float64(c), T + (rng.Float64()-0.5)*math.Abs(T)*1e-7} {
			if x <= T != xgbGoesLeft(x, c) {
				t.Fatalf("c=%v T=%v x=%v: mismatch", c, T, x)
			}
		}
	}
}

// Hand-written XGBoost JSON models with two features.

func leafTree(v float32) map[string]any {
	return map[string]any{
		"left_children": []int{-1}, "right_children": []int{-1}, "parents": []int{math.MaxInt32},
		"split_indices": []int{0}, "split_conditions": []float32{v}, "default_left": []int{0},
		"sum_hessian": []float32{1}, "split_type": []int{0}, "categories": []int{},
		"tree_param": map[string]any{"num_nodes": "1", "size_leaf_vector": "0"},
	}
}

func stump(feature int, cond float32, defaultLeft bool, left, right float32) map[string]any {
	dl := 0
	if defaultLeft {
		dl = 1
	}
	return map[string]any{
		"left_children": []int{1, -1, -1}, "right_children": []int{2, -1, -1}, "parents": []int{math.MaxInt32, 0, 0},
		"split_indices": []int{feature, 0, 0}, "split_conditions": []float32{cond, left, right},
		"default_left": []int{dl, 0, 0}, "sum_hessian": []float32{4, 3, 1}, "split_type": []int{0, 0, 0},
		"categories": []int{},
		"tree_param": map[string]any{"num_nodes": "3", "size_leaf_vector": "0"},
	}
}

func testModel(objective string, numClass int, baseScore string, treeInfo []int, trees ...map[string]any) map[string]any {
	return map[string]any{
		"version": []int{1, 7, 4},
		"learner": map[string]any{
			"attributes":    map[string]any{},
			"feature_names": []string{},
			"feature_types": []string{},
			"gradient_booster": map[string]any{
				"name": "gbtree",
				"model": map[string]any{
					"gbtree_model_param": map[string]any{"num_parallel_tree": "1", "num_trees": strconv.Itoa(len(trees)), "size_leaf_vector": "0"},
					"tree_info":          treeInfo,
					"trees":              trees,
				},
			},
			"learner_model_param": map[string]any{
				"base_score": baseScore, "boost_from_average": "1", "num_class": strconv.Itoa(numClass),
				"num_feature": "2", "num_target": "1",
			},
			"objective": map[string]any{"name": objective},
		},
	}
}

// obj walks nested maps of a test model.
func obj(m map[string]any, path ...string) map[string]any {
	for _, k := range path {
		m = m[k].(map[string]any)
	}
	return m
}

func firstTree(m map[string]any) map[string]any {
	return obj(m, "learner", "gradient_booster", "model")["trees"].([]map[string]any)[0]
}

func mustLoad(t *testing.T, doc map[string]any) *Model {
	t.Helper()
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

func predictOne(t *testing.T, m *Model, row ...float64) []float64 {
	t.Helper()
	p, err := m.PredictProba([][]float64{row})
	if err != nil {
		t.Fatal(err)
	}
	return p[0]
}

func TestSplitAndMissingSemantics(t *testing.T) {
	nan := math.NaN()
	for _, defaultLeft := range []bool{false, true} {
		m := mustLoad(t, testModel("binary:logistic", 0, "5E-1", []int{0}, stump(1, 1, defaultLeft, -1, 1)))
		nanMargin := 1.0
		if defaultLeft {
			nanMargin = -1
		}
		for _, tc := range []struct {
			x      float64
			margin float64
		}{
			{0, -1}, // zero is an ordinary value, never "missing"
			{float64(math.Nextafter32(1, 0)), -1},
			{math.Nextafter(1-0x1p-25, 0), -1}, // rounds to the float32 below 1
			{1 - 0x1p-25, 1},                   // rounds to 1: not < 1
			{1, 1},
			{2, 1},
			{math.Inf(-1), -1},
			{math.Inf(1), 1},
			{nan, nanMargin},
		} {
			got := predictOne(t, m, 123, tc.x)
			if want := sigmoid(tc.margin); math.Abs(got[1]-want) > 1e-12 || math.Abs(got[0]-(1-want)) > 1e-12 {
				t.Errorf("defaultLeft=%v x=%v: got %v, want p=%v", defaultLeft, tc.x, got, want)
			}
			c := m.Contributions([]float64{123, tc.x}, 1)
			if sum := c[0] + c[1] + c[2]; math.Abs(sum-tc.margin) > 1e-12 {
				t.Errorf("defaultLeft=%v x=%v: contributions %v sum to %v, want %v", defaultLeft, tc.x, c, sum, tc.margin)
			}
		}
	}
}

func TestSingleLeafTrees(t *testing.T) {
	m := mustLoad(t, testModel("binary:logistic", 0, "5E-1", []int{0, 0}, leafTree(0.25), stump(0, 0.5, false, -1, 1)))
	if got, want := predictOne(t, m, 0, 0)[1], sigmoid(0.25-1); math.Abs(got-want) > 1e-12 {
		t.Errorf("p = %v, want %v", got, want)
	}
	// A model made only of single-leaf trees.
	m = mustLoad(t, testModel("multi:softprob", 2, "5E-1", []int{0, 1}, leafTree(1), leafTree(-1)))
	got := predictOne(t, m, 0, 0)
	if want := sigmoid(2); math.Abs(got[0]-want) > 1e-12 {
		t.Errorf("p = %v, want [%v %v]", got, want, 1-want)
	}
	if c := m.Contributions([]float64{0, 0}, 0); c[0] != 0 || c[1] != 0 || c[2] != 1.5 {
		t.Errorf("contributions = %v, want [0 0 1.5]", c)
	}
}

func TestBaseScore(t *testing.T) {
	logit03 := math.Log(float64(float32(0.3)) / (1 - float64(float32(0.3))))
	for _, bs := range []string{"3E-1", "[3E-1]", " [ 3E-1 ] "} {
		m := mustLoad(t, testModel("binary:logistic", 0, bs, []int{0}, leafTree(0)))
		if got := predictOne(t, m, 0, 0)[1]; math.Abs(got-0.3) > 1e-7 {
			t.Errorf("base_score %q: p = %v, want 0.3", bs, got)
		}
		if c := m.Contributions([]float64{0, 0}, 1); c[2] != logit03 {
			t.Errorf("base_score %q: bias = %v, want logit(0.3) = %v", bs, c[2], logit03)
		}
	}
	// Multi-class base scores are margins, one per class or broadcast.
	m := mustLoad(t, testModel("multi:softprob", 3, "[1E-1,2E-1,7E-1]", []int{0, 1, 2}, leafTree(0), leafTree(0), leafTree(0)))
	got := predictOne(t, m, 0, 0)
	z := math.Exp(float64(float32(0.1))) + math.Exp(float64(float32(0.2))) + math.Exp(float64(float32(0.7)))
	for k, b := range []float32{0.1, 0.2, 0.7} {
		if want := math.Exp(float64(b)) / z; math.Abs(got[k]-want) > 1e-12 {
			t.Errorf("class %d: p = %v, want %v", k, got[k], want)
		}
		if c := m.Contributions([]float64{0, 0}, k); c[2] != float64(b) {
			t.Errorf("class %d: bias %v, want %v", k, c[2], b)
		}
	}
}

func TestMulticlassTreeOrder(t *testing.T) {
	// tree_info in an unusual order: each class must still sum its own trees.
	m := mustLoad(t, testModel("multi:softmax", 3, "5E-1", []int{2, 0, 1, 1, 2, 0},
		leafTree(3), leafTree(1), leafTree(2), stump(0, 10, false, 0.5, -0.5), leafTree(3), leafTree(1)))
	margins := []float64{2.5, 3, 6.5} // base 0.5 + trees; x0=0 takes the stump's left leaf
	got := predictOne(t, m, 0, 0)
	z := math.Exp(margins[0]) + math.Exp(margins[1]) + math.Exp(margins[2])
	for k := range margins {
		if want := math.Exp(margins[k]) / z; math.Abs(got[k]-want) > 1e-12 {
			t.Errorf("class %d: p = %v, want %v", k, got[k], want)
		}
	}
}

func TestLoadRejects(t *testing.T) {
	valid := func() map[string]any {
		return testModel("binary:logistic", 0, "5E-1", []int{0}, stump(0, 1, false, -1, 1))
	}
	mutated := func(f func(m map[string]any)) []byte {
		m := valid()
		f(m)
		data, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	setParam := func(key, val string) []byte {
		return mutated(func(m map[string]any) { obj(m, "learner", "learner_model_param")[key] = val })
	}
	golden, err := os.ReadFile("testdata/binary_model.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, wantErr string
		data          []byte
	}{
		{"empty", "empty input", nil},
		{"not JSON", "decoding XGBoost JSON", []byte("hello")},
		{"old binary format", "decoding XGBoost JSON", []byte("binf\x00\x00\x00\x3f")},
		{"truncated", "decoding XGBoost JSON: unexpected EOF", golden[:len(golden)/2]},
		{"other JSON", `no "learner"`, []byte(`{"foo": 1}`)},
		{"wrong types", "decoding XGBoost JSON", []byte(`{"learner": {"feature_names": 3}}`)},
		{"no objective", `no "learner.objective"`, mutated(func(m map[string]any) { delete(obj(m, "learner"), "objective") })},
		{"categorical split", "categorical", mutated(func(m map[string]any) { firstTree(m)["split_type"] = []int{1, 0, 0} })},
		{"categories", "categorical", mutated(func(m map[string]any) { firstTree(m)["categories"] = []int{1, 3} })},
		{"dart", "dart booster is not supported", mutated(func(m map[string]any) { obj(m, "learner", "gradient_booster")["name"] = "dart" })},
		{"gblinear", `booster "gblinear" is not supported`, mutated(func(m map[string]any) { obj(m, "learner", "gradient_booster")["name"] = "gblinear" })},
		{"vector leaf tree", "vector leaves are not supported", mutated(func(m map[string]any) { obj(firstTree(m), "tree_param")["size_leaf_vector"] = "2" })},
		{"vector leaf model", "vector leaves are not supported", mutated(func(m map[string]any) {
			obj(m, "learner", "gradient_booster", "model", "gbtree_model_param")["size_leaf_vector"] = "3"
		})},
		{"multi target", "multi-target", setParam("num_target", "2")},
		{"regression", `unsupported objective "reg:squarederror"`, mutated(func(m map[string]any) { obj(m, "learner", "objective")["name"] = "reg:squarederror" })},
		{"ranking", `unsupported objective "rank:pairwise"`, mutated(func(m map[string]any) { obj(m, "learner", "objective")["name"] = "rank:pairwise" })},
		{"softprob one class", "num_class >= 2", mutated(func(m map[string]any) { obj(m, "learner", "objective")["name"] = "multi:softprob" })},
		{"base_score garbage", "base_score", setParam("base_score", "abc")},
		{"base_score not prob", "not a probability", setParam("base_score", "1.5E0")},
		{"base_score vector length", "has 2 values", setParam("base_score", "[1E-1,2E-1]")},
		{"missing num_feature", "missing num_feature", setParam("num_feature", "")},
		{"num_feature garbage", "num_feature", setParam("num_feature", "eight")},
		{"feature_names mismatch", "feature_names", mutated(func(m map[string]any) { obj(m, "learner")["feature_names"] = []string{"a"} })},
		{"no trees", "no trees", mutated(func(m map[string]any) {
			mm := obj(m, "learner", "gradient_booster", "model")
			mm["trees"], mm["tree_info"] = []any{}, []int{}
			obj(mm, "gbtree_model_param")["num_trees"] = "0"
		})},
		{"tree_info length", "tree_info", mutated(func(m map[string]any) { obj(m, "learner", "gradient_booster", "model")["tree_info"] = []int{0, 0} })},
		{"tree_info class", "out of range", mutated(func(m map[string]any) { obj(m, "learner", "gradient_booster", "model")["tree_info"] = []int{1} })},
		{"num_trees", "num_trees=2", mutated(func(m map[string]any) {
			obj(m, "learner", "gradient_booster", "model", "gbtree_model_param")["num_trees"] = "2"
		})},
		{"child out of range", "out of range", mutated(func(m map[string]any) { firstTree(m)["left_children"] = []int{7, -1, -1} })},
		{"cycle", "not a tree", mutated(func(m map[string]any) {
			tr := firstTree(m)
			tr["left_children"], tr["right_children"] = []int{1, 1, -1}, []int{2, 2, -1}
		})},
		{"split feature", "split feature 5", mutated(func(m map[string]any) { firstTree(m)["split_indices"] = []int{5, 0, 0} })},
		{"array length", "sum_hessian has 2 entries", mutated(func(m map[string]any) { firstTree(m)["sum_hessian"] = []float32{1, 1} })},
		{"default_left", "default_left", mutated(func(m map[string]any) { firstTree(m)["default_left"] = []string{"yes", "no", "no"} })},
		{"threshold overflow", "split_conditions", mutated(func(m map[string]any) { firstTree(m)["split_conditions"] = []float64{1e300, 0, 0} })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Load(bytes.NewReader(tc.data))
			if err == nil {
				t.Fatalf("loaded %+v, want error", m)
			}
			if !strings.HasPrefix(err.Error(), "xgbmodel: ") || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q, want it to mention %q", err, tc.wantErr)
			}
		})
	}
}

func TestLoadFileErrorsNamePath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "model.json")
	if err := os.WriteFile(path, []byte(`{"learner": {}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + ".missing"} {
		if _, err := LoadFile(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("LoadFile(%s) error %v, want it to name the path", p, err)
		}
	}
}

func TestPredictProbaInput(t *testing.T) {
	m := mustLoad(t, testModel("binary:logistic", 0, "5E-1", []int{0}, stump(0, 1, false, -1, 1)))
	if _, err := m.PredictProba([][]float64{{1, 2}, {1}}); err == nil || !strings.Contains(err.Error(), "row 1 has 1 features") {
		t.Errorf("error %v, want a width error for row 1", err)
	}
	if got, err := m.PredictProba(nil); err != nil || len(got) != 0 {
		t.Errorf("PredictProba(nil) = %v, %v", got, err)
	}
	for _, c := range []struct {
		row   []float64
		class int
	}{{[]float64{1}, 0}, {[]float64{1, 2}, -1}, {[]float64{1, 2}, 2}} {
		if got := m.Contributions(c.row, c.class); got != nil {
			t.Errorf("Contributions(%v, %d) = %v, want nil", c.row, c.class, got)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	m := loadTestModel(t, "multiclass")
	rows, _ := goldenRows(t, "multiclass")
	want, err := m.PredictProba(rows[:64])
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	for range 4 {
		go func() {
			got, err := m.PredictProba(rows[:64])
			if err == nil && got[63][2] != want[63][2] {
				err = errors.New("concurrent prediction differs")
			}
			m.Contributions(rows[0], 1)
			done <- err
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
