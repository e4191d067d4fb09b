// Package xgbmodel loads XGBoost tree models saved as JSON
// (booster.save_model("model.json"), XGBoost 1.x–3.x), predicts class
// probabilities and explains single predictions.
//
// # Why a translation step
//
// The leaves library only reads XGBoost's old binary format. This package
// parses the JSON model, translates its trees in memory into LightGBM's text
// format and loads that with leaves.LGEnsembleFromReader (which keeps the
// sigmoid/softmax transformation). The translation preserves XGBoost's
// semantics exactly:
//
//   - XGBoost rounds every input to float32 and goes left when
//     float32(x) < c; LightGBM goes left when x <= T. Each float32 split
//     condition c is mapped to the largest float64 T with that property
//     (see lgbThreshold), so every split decision on float64 rows matches
//     XGBoost's. (Probabilities can still differ in the 7th decimal:
//     XGBoost sums leaf values in float32, leaves in float64.)
//   - NaN means "missing" and follows the node's default direction
//     (LightGBM missing type NaN); zero is never treated as missing.
//   - base_score becomes one single-leaf tree per class in the first
//     iteration. For binary:logistic it is a probability and enters as its
//     logit; for multi:softprob/multi:softmax each value is added to the
//     class margin as is (XGBoost applies no link there). Both the scalar
//     form "5E-1" (XGBoost 1.x/2.x) and the vector form "[5E-1]" (3.x) are
//     accepted.
//   - Multi-class trees are regrouped by tree_info into LightGBM's
//     iteration-major order.
//
// Supported objectives are binary:logistic, multi:softprob and multi:softmax
// (the latter yields probabilities too). Categorical splits, the dart and
// gblinear boosters, multi-target models and vector leaves are rejected.
//
// # Contributions
//
// Model.Contributions uses the Saabas method, like XGBoost's
// predict(pred_contribs=True, approx_contribs=True): every node gets an
// expected value, the mean of its children's expectations weighted by their
// sum_hessian (the cover), i.e. the cover-weighted mean of the leaf values
// below it. Walking the decision path
// of a row, each split credits its feature with the change of expectation
// from the node to the child taken. The bias is the sum of the root
// expectations plus the base margin, so all contributions together equal the
// raw margin (log-odds for binary, per-class score for multi-class).
package xgbmodel

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"

	"github.com/dmitryikh/leaves"
)

// Model is a loaded XGBoost tree ensemble. It is safe for concurrent use.
type Model struct {
	ens          *leaves.Ensemble
	numFeatures  int
	featureNames []string
	// groups holds the trees of each raw output: one group for binary
	// models, one per class otherwise.
	groups [][]tree
	// baseMargin is the initial raw score of each group.
	baseMargin []float64
}

// Load reads an XGBoost JSON model.
func Load(r io.Reader) (*Model, error) {
	m, err := load(r)
	if err != nil {
		return nil, fmt.Errorf("xgbmodel: %w", err)
	}
	return m, nil
}

// LoadFile reads an XGBoost JSON model from path.
func LoadFile(path string) (*Model, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("xgbmodel: %w", err)
	}
	defer f.Close()
	m, err := load(f)
	if err != nil {
		return nil, fmt.Errorf("xgbmodel: %s: %w", path, err)
	}
	return m, nil
}

func load(r io.Reader) (*Model, error) {
	m, err := parseXGBoost(r)
	if err != nil {
		return nil, err
	}
	text := m.lightGBMText()
	m.ens, err = leaves.LGEnsembleFromReader(bufio.NewReader(bytes.NewReader(text)), true)
	if err != nil {
		// The text is generated here, so this is a bug, not bad input.
		return nil, fmt.Errorf("leaves rejected the translated model: %w", err)
	}
	return m, nil
}

// NumFeatures returns the number of input features (the row width).
func (m *Model) NumFeatures() int { return m.numFeatures }

// NumClasses returns the number of classes; binary models report 2.
func (m *Model) NumClasses() int {
	if len(m.groups) == 1 {
		return 2
	}
	return len(m.groups)
}

// FeatureNames returns the feature names stored in the model, or nil if the
// model was trained without names.
func (m *Model) FeatureNames() []string {
	if m.featureNames == nil {
		return nil
	}
	return append([]string(nil), m.featureNames...)
}

// PredictProba returns one probability vector of length NumClasses() per
// row. For binary models it is [1-p, p]. NaN marks a missing value. Every row
// must have exactly NumFeatures() values.
func (m *Model) PredictProba(rows [][]float64) ([][]float64, error) {
	nf := m.numFeatures
	flat := make([]float64, len(rows)*nf)
	for i, row := range rows {
		if len(row) != nf {
			return nil, fmt.Errorf("xgbmodel: row %d has %d features, model expects %d", i, len(row), nf)
		}
		copy(flat[i*nf:], row)
	}
	out := make([][]float64, len(rows))
	if len(rows) == 0 {
		return out, nil
	}
	ng := m.ens.NOutputGroups()
	raw := make([]float64, len(rows)*ng)
	if err := m.ens.PredictDense(flat, len(rows), nf, raw, 0, runtime.GOMAXPROCS(0)); err != nil {
		return nil, fmt.Errorf("xgbmodel: predict: %w", err)
	}
	if ng > 1 {
		for i := range out {
			out[i] = raw[i*ng : (i+1)*ng : (i+1)*ng]
		}
		return out, nil
	}
	probs := make([]float64, 2*len(rows))
	for i, p := range raw {
		probs[2*i], probs[2*i+1] = 1-p, p
		out[i] = probs[2*i : 2*i+2 : 2*i+2]
	}
	return out, nil
}

// PredictDense scores the rows stored back to back in vals, NumFeatures()
// values each (NaN = missing), writing NumClasses() probabilities per row
// into probs (for binary models [1-p, p]). It runs leaves on the calling
// goroutine only, so a caller scoring a big batch splits it across
// goroutines itself, in fewer and larger parts than leaves' own 16-row
// tasks over a channel.
func (m *Model) PredictDense(vals, probs []float64) error {
	nf, nc := m.numFeatures, m.NumClasses()
	if len(vals)%nf != 0 {
		return fmt.Errorf("xgbmodel: %d values are not whole rows of %d features", len(vals), nf)
	}
	n := len(vals) / nf
	if len(probs) != n*nc {
		return fmt.Errorf("xgbmodel: room for %d probabilities, %d rows of %d classes need %d", len(probs), n, nc, n*nc)
	}
	if n == 0 {
		return nil
	}
	ng := m.ens.NOutputGroups()
	// Binary models give one probability per row: leaves writes them into
	// the front of probs, spread out into pairs from the back.
	if err := m.ens.PredictDense(vals, n, nf, probs[:n*ng], 0, 1); err != nil {
		return fmt.Errorf("xgbmodel: predict: %w", err)
	}
	if ng == 1 {
		for i := n - 1; i >= 0; i-- {
			p := probs[i]
			probs[2*i], probs[2*i+1] = 1-p, p
		}
	}
	return nil
}

// Contributions explains the raw margin of class for row with the Saabas
// method (see the package documentation). The result has NumFeatures()+1
// entries; the last one is the bias. Their sum is the class margin: for
// binary models the log-odds of class 1, and its negation for class 0.
// It returns nil if row has the wrong width or class is out of range.
func (m *Model) Contributions(row []float64, class int) []float64 {
	if len(row) != m.numFeatures || class < 0 || class >= m.NumClasses() {
		return nil
	}
	group, negate := class, false
	if len(m.groups) == 1 {
		group, negate = 0, class == 0
	}
	out := make([]float64, m.numFeatures+1)
	bias := m.baseMargin[group]
	for i := range m.groups[group] {
		t := &m.groups[group][i]
		n := &t.nodes[0]
		bias += n.mean
		for !n.isLeaf() {
			next := &t.nodes[n.next(row[n.feature])]
			out[n.feature] += next.mean - n.mean
			n = next
		}
	}
	out[m.numFeatures] = bias
	if negate {
		for i := range out {
			out[i] = -out[i]
		}
	}
	return out
}

// tree is one XGBoost tree, nodes in preorder with the root at index 0.
type tree struct {
	nodes []node
}

type node struct {
	// left and right index tree.nodes; left < 0 marks a leaf.
	left, right int32
	feature     int
	// threshold is the LightGBM threshold equivalent to XGBoost's float32
	// split condition (x <= threshold goes left).
	threshold   float64
	defaultLeft bool
	// value is the leaf value (leaves only).
	value float64
	// hess is XGBoost's sum_hessian, the node's cover.
	hess float64
	// mean is the cover-weighted mean of the leaf values below the node.
	mean float64
}

func (n *node) isLeaf() bool { return n.left < 0 }

// next returns the child that x is sent to, with leaves' decision rule.
func (n *node) next(x float64) int32 {
	if math.IsNaN(x) {
		if n.defaultLeft {
			return n.left
		}
		return n.right
	}
	if x <= n.threshold {
		return n.left
	}
	return n.right
}

// fillMeans computes node expectations bottom-up; in preorder every child
// comes after its parent, so a reverse scan sees children first.
func (t *tree) fillMeans() {
	for i := len(t.nodes) - 1; i >= 0; i-- {
		n := &t.nodes[i]
		if n.isLeaf() {
			n.mean = n.value
			continue
		}
		l, r := &t.nodes[n.left], &t.nodes[n.right]
		if w := l.hess + r.hess; w > 0 {
			n.mean = (l.hess*l.mean + r.hess*r.mean) / w
		} else {
			n.mean = (l.mean + r.mean) / 2
		}
	}
}
