package xgbmodel

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// The subset of XGBoost's JSON model schema this package reads. XGBoost
// writes learner and tree parameters as strings ("8", "5E-1").
type xgbDoc struct {
	Learner *xgbLearner `json:"learner"`
}

type xgbLearner struct {
	FeatureNames    []string `json:"feature_names"`
	GradientBooster *struct {
		Name  string     `json:"name"`
		Model *xgbGBTree `json:"model"`
	} `json:"gradient_booster"`
	ModelParam *struct {
		BaseScore  string `json:"base_score"`
		NumClass   string `json:"num_class"`
		NumFeature string `json:"num_feature"`
		NumTarget  string `json:"num_target"`
	} `json:"learner_model_param"`
	Objective *struct {
		Name string `json:"name"`
	} `json:"objective"`
}

type xgbGBTree struct {
	Param struct {
		NumTrees       string `json:"num_trees"`
		SizeLeafVector string `json:"size_leaf_vector"`
	} `json:"gbtree_model_param"`
	TreeInfo []int     `json:"tree_info"`
	Trees    []xgbTree `json:"trees"`
}

type xgbTree struct {
	Param struct {
		NumNodes       string `json:"num_nodes"`
		SizeLeafVector string `json:"size_leaf_vector"`
	} `json:"tree_param"`
	Left            []int32       `json:"left_children"`
	Right           []int32       `json:"right_children"`
	SplitIndices    []int64       `json:"split_indices"`
	SplitConditions []json.Number `json:"split_conditions"`
	DefaultLeft     []flexBool    `json:"default_left"`
	SumHessian      []json.Number `json:"sum_hessian"`
	SplitType       []int         `json:"split_type"`
	Categories      []int64       `json:"categories"`
}

// flexBool accepts both default_left encodings: JSON booleans (XGBoost
// 1.0–1.5) and 0/1 integers (1.6+).
type flexBool bool

func (b *flexBool) UnmarshalJSON(data []byte) error {
	switch string(data) {
	case "true", "1":
		*b = true
	case "false", "0":
		*b = false
	default:
		return fmt.Errorf("default_left value %s is not a boolean", data)
	}
	return nil
}

func parseXGBoost(r io.Reader) (*Model, error) {
	var doc xgbDoc
	if err := json.NewDecoder(r).Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, errors.New("empty input, want an XGBoost JSON model")
		}
		return nil, fmt.Errorf("decoding XGBoost JSON: %w", err)
	}
	l := doc.Learner
	switch {
	case l == nil:
		return nil, errors.New(`not an XGBoost JSON model: no "learner" object`)
	case l.ModelParam == nil:
		return nil, errors.New(`not an XGBoost JSON model: no "learner.learner_model_param"`)
	case l.Objective == nil:
		return nil, errors.New(`not an XGBoost JSON model: no "learner.objective"`)
	case l.GradientBooster == nil:
		return nil, errors.New(`not an XGBoost JSON model: no "learner.gradient_booster"`)
	}
	switch l.GradientBooster.Name {
	case "gbtree":
	case "dart":
		return nil, errors.New("dart booster is not supported (its trees carry dropout weights)")
	default:
		return nil, fmt.Errorf("booster %q is not supported, only gbtree", l.GradientBooster.Name)
	}
	gb := l.GradientBooster.Model
	if gb == nil {
		return nil, errors.New(`not an XGBoost JSON model: no "learner.gradient_booster.model"`)
	}

	mp := l.ModelParam
	numFeature, err := intParam("num_feature", mp.NumFeature, -1)
	if err != nil {
		return nil, err
	}
	if numFeature < 1 || numFeature > math.MaxInt32 {
		return nil, fmt.Errorf("num_feature %d out of range", numFeature)
	}
	if numTarget, err := intParam("num_target", mp.NumTarget, 1); err != nil {
		return nil, err
	} else if numTarget != 1 {
		return nil, fmt.Errorf("multi-target models are not supported (num_target=%d)", numTarget)
	}
	if err := checkLeafVector("gbtree_model_param", gb.Param.SizeLeafVector); err != nil {
		return nil, err
	}
	numClass, err := intParam("num_class", mp.NumClass, 0)
	if err != nil {
		return nil, err
	}

	var numGroups int
	switch obj := l.Objective.Name; obj {
	case "binary:logistic":
		numGroups = 1
	case "multi:softprob", "multi:softmax":
		if numClass < 2 {
			return nil, fmt.Errorf("objective %s needs num_class >= 2, got %d", obj, numClass)
		}
		numGroups = numClass
	default:
		return nil, fmt.Errorf("unsupported objective %q (supported: binary:logistic, multi:softprob, multi:softmax)", obj)
	}

	base, err := parseBaseScore(mp.BaseScore, numGroups)
	if err != nil {
		return nil, err
	}
	m := &Model{numFeatures: numFeature, baseMargin: make([]float64, numGroups)}
	for g, b := range base {
		if numGroups > 1 {
			m.baseMargin[g] = float64(b)
			continue
		}
		if !(b > 0 && b < 1) {
			return nil, fmt.Errorf("base_score %v is not a probability in (0, 1)", b)
		}
		m.baseMargin[g] = math.Log(float64(b) / (1 - float64(b)))
	}

	if len(l.FeatureNames) > 0 {
		if len(l.FeatureNames) != numFeature {
			return nil, fmt.Errorf("%d feature_names for num_feature=%d", len(l.FeatureNames), numFeature)
		}
		m.featureNames = l.FeatureNames
	}

	m.groups, err = groupTrees(gb, numGroups, numFeature)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// groupTrees converts the trees and sorts them into per-class groups using
// tree_info.
func groupTrees(gb *xgbGBTree, numGroups, numFeature int) ([][]tree, error) {
	if len(gb.Trees) == 0 {
		return nil, errors.New("model has no trees")
	}
	if n, err := intParam("num_trees", gb.Param.NumTrees, len(gb.Trees)); err != nil {
		return nil, err
	} else if n != len(gb.Trees) {
		return nil, fmt.Errorf("num_trees=%d but %d trees present", n, len(gb.Trees))
	}
	if len(gb.TreeInfo) != len(gb.Trees) {
		return nil, fmt.Errorf("tree_info has %d entries for %d trees", len(gb.TreeInfo), len(gb.Trees))
	}
	groups := make([][]tree, numGroups)
	for i := range gb.Trees {
		g := gb.TreeInfo[i]
		if g < 0 || g >= numGroups {
			return nil, fmt.Errorf("tree %d: tree_info class %d out of range [0, %d)", i, g, numGroups)
		}
		t, err := convertTree(&gb.Trees[i], numFeature)
		if err != nil {
			return nil, fmt.Errorf("tree %d: %w", i, err)
		}
		groups[g] = append(groups[g], t)
	}
	for g := range groups {
		if len(groups[g]) != len(groups[0]) {
			return nil, fmt.Errorf("class %d has %d trees but class 0 has %d", g, len(groups[g]), len(groups[0]))
		}
	}
	return groups, nil
}

// convertTree validates an XGBoost tree and renumbers the nodes reachable
// from the root in preorder. Unreachable slots (nodes deleted by pruning)
// are dropped.
func convertTree(xt *xgbTree, numFeature int) (tree, error) {
	n := len(xt.Left)
	if n == 0 {
		return tree{}, errors.New("no nodes")
	}
	if err := checkLeafVector("tree_param", xt.Param.SizeLeafVector); err != nil {
		return tree{}, err
	}
	if nn, err := intParam("num_nodes", xt.Param.NumNodes, n); err != nil {
		return tree{}, err
	} else if nn != n {
		return tree{}, fmt.Errorf("num_nodes=%d but left_children has %d entries", nn, n)
	}
	for _, a := range []struct {
		name string
		len  int
	}{
		{"right_children", len(xt.Right)},
		{"split_indices", len(xt.SplitIndices)},
		{"split_conditions", len(xt.SplitConditions)},
		{"default_left", len(xt.DefaultLeft)},
		{"sum_hessian", len(xt.SumHessian)},
	} {
		if a.len != n {
			return tree{}, fmt.Errorf("%s has %d entries, want %d", a.name, a.len, n)
		}
	}
	if len(xt.SplitType) != 0 && len(xt.SplitType) != n {
		return tree{}, fmt.Errorf("split_type has %d entries, want %d", len(xt.SplitType), n)
	}
	if len(xt.Categories) != 0 {
		return tree{}, errors.New("categorical splits are not supported")
	}

	type pending struct {
		orig   int32
		parent int32 // index in t.nodes, -1 for the root
		isLeft bool
	}
	t := tree{nodes: make([]node, 0, n)}
	seen := make([]bool, n)
	stack := []pending{{orig: 0, parent: -1}}
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		i := p.orig
		if seen[i] {
			return tree{}, fmt.Errorf("node %d is reached twice (not a tree)", i)
		}
		seen[i] = true

		cond, err := strconv.ParseFloat(xt.SplitConditions[i].String(), 32)
		if err != nil || math.IsInf(cond, 0) || math.IsNaN(cond) {
			return tree{}, fmt.Errorf("node %d: split_conditions value %q is not a finite float32", i, xt.SplitConditions[i])
		}
		hess, err := strconv.ParseFloat(xt.SumHessian[i].String(), 32)
		if err != nil || !(hess >= 0) || math.IsInf(hess, 0) {
			return tree{}, fmt.Errorf("node %d: sum_hessian value %q is not a finite non-negative float32", i, xt.SumHessian[i])
		}
		nd := node{left: -1, right: -1, hess: hess}
		idx := int32(len(t.nodes))
		if p.parent >= 0 {
			if p.isLeft {
				t.nodes[p.parent].left = idx
			} else {
				t.nodes[p.parent].right = idx
			}
		}

		l, r := xt.Left[i], xt.Right[i]
		if l == -1 && r == -1 {
			// For leaves XGBoost stores the leaf value in split_conditions.
			nd.value = cond
			t.nodes = append(t.nodes, nd)
			continue
		}
		if l < 1 || int(l) >= n || r < 1 || int(r) >= n {
			return tree{}, fmt.Errorf("node %d: children (%d, %d) out of range [1, %d)", i, l, r, n)
		}
		if len(xt.SplitType) != 0 && xt.SplitType[i] != 0 {
			return tree{}, fmt.Errorf("node %d: categorical splits are not supported", i)
		}
		f := xt.SplitIndices[i]
		if f < 0 || f >= int64(numFeature) {
			return tree{}, fmt.Errorf("node %d: split feature %d out of range [0, %d)", i, f, numFeature)
		}
		nd.feature = int(f)
		nd.threshold = lgbThreshold(float32(cond))
		nd.defaultLeft = bool(xt.DefaultLeft[i])
		t.nodes = append(t.nodes, nd)
		// Push right first so the left subtree is numbered first (preorder).
		stack = append(stack, pending{r, idx, false}, pending{l, idx, true})
	}
	t.fillMeans()
	return t, nil
}

// parseBaseScore reads base_score, either a scalar ("5E-1") or a vector
// ("[5E-1]" or one value per class), and returns one value per group.
func parseBaseScore(s string, numGroups int) ([]float32, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("missing base_score")
	}
	parts := []string{s}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		parts = strings.Split(s[1:len(s)-1], ",")
	}
	if len(parts) != 1 && len(parts) != numGroups {
		return nil, fmt.Errorf("base_score %q has %d values, want 1 or one per class (%d)", s, len(parts), numGroups)
	}
	vals := make([]float32, numGroups)
	for i := range vals {
		p := parts[0]
		if len(parts) > 1 {
			p = parts[i]
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 32)
		if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
			return nil, fmt.Errorf("base_score %q is not a finite number", s)
		}
		vals[i] = float32(v)
	}
	return vals, nil
}

// intParam parses an integer XGBoost parameter; def applies when it is
// absent, and a negative def makes it required.
func intParam(name, s string, def int) (int, error) {
	if s == "" {
		if def < 0 {
			return 0, fmt.Errorf("missing %s", name)
		}
		return def, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%s %q is not an integer", name, s)
	}
	return v, nil
}

// checkLeafVector rejects vector-leaf trees (multi_strategy=multi_output_tree).
func checkLeafVector(where, s string) error {
	v, err := intParam("size_leaf_vector", s, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if v > 1 {
		return fmt.Errorf("%s: vector leaves are not supported (size_leaf_vector=%d)", where, v)
	}
	return nil
}
