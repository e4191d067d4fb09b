package xgbmodel

import (
	"bytes"
	"math"
	"strconv"
	"strings"
)

// LightGBM decision_type bits as read by leaves: bit 1 is default_left and
// bits 2-3 hold the missing type, where 2 means "NaN is missing". Zero is
// never declared missing, so 0.0 is compared like any other value.
const (
	decisionDefaultLeft = 1 << 1
	decisionMissingNaN  = 2 << 2
)

// lgbThreshold translates XGBoost's split test float32(x) < c into
// LightGBM's x <= T: it returns the largest float64 T such that, for every
// non-NaN float64 x, x <= T exactly when float32(x) < c.
//
// float32(x) < c means float32(x) <= p with p the float32 just below c.
// Conversion rounds to nearest, so the boundary is the midpoint between p
// and c (exact in float64, whose significand is wider). At the midpoint a
// tie goes to the value with an even significand: if that is p, the
// midpoint itself still goes left and T is the midpoint; otherwise T is the
// float64 just below it.
func lgbThreshold(c float32) float64 {
	p := math.Nextafter32(c, float32(math.Inf(-1)))
	if math.IsInf(float64(p), -1) {
		// c is -MaxFloat32: values below it round to -Inf once their
		// magnitude reaches MaxFloat32 + ulp/2 (IEEE overflow rule, ties
		// included), and the ulp there is 2^104.
		return float64(c) - 0x1p103
	}
	mid := (float64(p) + float64(c)) / 2
	if math.Float32bits(p)&1 == 0 {
		return mid
	}
	return math.Nextafter(mid, math.Inf(-1))
}

// lightGBMText renders the model in LightGBM's text format, restricted to
// the keys leaves reads. leaves' parser needs exactly one blank line after
// each block and a tree_sizes entry per tree. Iteration 0 holds the base
// margins as single-leaf trees; then the XGBoost trees follow
// iteration-major (all classes of iteration 0, then iteration 1, ...).
func (m *Model) lightGBMText() []byte {
	numGroups := len(m.groups)
	var trees bytes.Buffer
	var sizes []string
	add := func(t *tree) {
		start := trees.Len()
		writeTree(&trees, len(sizes), t)
		sizes = append(sizes, strconv.Itoa(trees.Len()-start))
	}
	for g := range numGroups {
		add(&tree{nodes: []node{{left: -1, right: -1, value: m.baseMargin[g]}}})
	}
	for it := range m.groups[0] {
		for g := range numGroups {
			add(&m.groups[g][it])
		}
	}

	objective := "binary sigmoid:1"
	if numGroups > 1 {
		objective = "multiclass num_class:" + strconv.Itoa(numGroups)
	}
	var out bytes.Buffer
	out.WriteString("tree\nversion=v3\n")
	out.WriteString("num_class=" + strconv.Itoa(numGroups) + "\n")
	out.WriteString("num_tree_per_iteration=" + strconv.Itoa(numGroups) + "\n")
	out.WriteString("max_feature_idx=" + strconv.Itoa(m.numFeatures-1) + "\n")
	out.WriteString("objective=" + objective + "\n")
	out.WriteString("tree_sizes=" + strings.Join(sizes, " ") + "\n\n")
	out.Write(trees.Bytes())
	return out.Bytes()
}

// writeTree writes one "Tree=" block. LightGBM numbers internal nodes and
// leaves separately; a child reference c >= 0 is an internal node and c < 0
// is leaf ^c. Preorder keeps the root at internal node 0, as leaves expects.
func writeTree(b *bytes.Buffer, index int, t *tree) {
	ref := make([]int, len(t.nodes))
	numInternal, numLeaves := 0, 0
	for i := range t.nodes {
		if t.nodes[i].isLeaf() {
			ref[i] = ^numLeaves
			numLeaves++
		} else {
			ref[i] = numInternal
			numInternal++
		}
	}
	var feature, threshold, decision, left, right, leafValue []string
	for i := range t.nodes {
		n := &t.nodes[i]
		if n.isLeaf() {
			leafValue = append(leafValue, formatFloat(n.value))
			continue
		}
		dt := decisionMissingNaN
		if n.defaultLeft {
			dt |= decisionDefaultLeft
		}
		feature = append(feature, strconv.Itoa(n.feature))
		threshold = append(threshold, formatFloat(n.threshold))
		decision = append(decision, strconv.Itoa(dt))
		left = append(left, strconv.Itoa(ref[n.left]))
		right = append(right, strconv.Itoa(ref[n.right]))
	}

	line := func(key string, vals []string) {
		b.WriteString(key + "=" + strings.Join(vals, " ") + "\n")
	}
	b.WriteString("Tree=" + strconv.Itoa(index) + "\n")
	b.WriteString("num_leaves=" + strconv.Itoa(numLeaves) + "\n")
	b.WriteString("num_cat=0\n")
	if numInternal > 0 {
		line("split_feature", feature)
		line("threshold", threshold)
		line("decision_type", decision)
		line("left_child", left)
		line("right_child", right)
	}
	line("leaf_value", leafValue)
	b.WriteString("\n")
}

// formatFloat prints v so that strconv.ParseFloat(s, 64) returns v exactly.
func formatFloat(v float64) string {
	return strconv.FormatFloat(v, 'g', -1, 64)
}
