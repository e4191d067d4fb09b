package window

import (
	"math"
	"math/bits"
)

// HyperLogLog sketch used by distinct-IP sets past the exact bound.
//
// Precision p = 12 gives m = 4096 one-byte registers (4 KiB, stored eight
// to a uint64 so a sketch shares the sets' []uint64 blocks) and a standard
// error of about 1.04/sqrt(4096) = 1.6 %. The estimate is Ertl's improved
// raw estimator ("New cardinality estimation algorithms for HyperLogLog
// sketches", 2017, algorithm 6), unbiased over the whole range without
// HLL++'s empirical bias tables. Merging two sketches (register-wise max)
// gives exactly the sketch of the union, so cascaded windows and windows
// computed directly carry the same estimate.
const (
	sketchP = 12
	sketchM = 1 << sketchP
	sketchQ = 64 - sketchP // bits left for the rank
)

// sketchAdd inserts a 64-bit hash (already well mixed) into registers r.
func sketchAdd(r []uint64, h uint64) {
	i := h >> sketchQ
	// The guard bit bounds the rank at q+1.
	rank := uint64(bits.LeadingZeros64(h<<sketchP|1<<(sketchP-1)) + 1)
	w, sh := i>>3, (i&7)*8
	if cur := r[w] >> sh & 0xff; rank > cur {
		r[w] = r[w]&^(0xff<<sh) | rank<<sh
	}
}

// sketchMerge makes r the sketch of the union of r and o.
func sketchMerge(r, o []uint64) {
	for w := range r {
		x, y := r[w], o[w]
		if x == y {
			continue
		}
		var z uint64
		for sh := uint(0); sh < 64; sh += 8 {
			z |= max(x>>sh&0xff, y>>sh&0xff) << sh
		}
		r[w] = z
	}
}

// sketchEstimate returns the estimated number of distinct hashes added.
func sketchEstimate(r []uint64) float64 {
	var c [sketchQ + 2]int
	for _, w := range r {
		for sh := uint(0); sh < 64; sh += 8 {
			c[w>>sh&0xff]++
		}
	}
	const m = float64(sketchM)
	z := m * ertlTau(1-float64(c[sketchQ+1])/m)
	for k := sketchQ; k >= 1; k-- {
		z = 0.5 * (z + float64(c[k]))
	}
	z += m * ertlSigma(float64(c[0])/m)
	const alphaInf = 0.5 / math.Ln2
	return alphaInf * m * m / z
}

// ertlSigma is σ(x) = x + Σ_{k≥1} x^(2^k) 2^(k-1).
func ertlSigma(x float64) float64 {
	if x == 1 {
		return math.Inf(1)
	}
	y, z := 1.0, x
	for {
		x *= x
		zp := z
		z += x * y
		y += y
		if z == zp {
			return z
		}
	}
}

// ertlTau is τ(x) = (1 - x - Σ_{k≥1} (1 - x^(2^-k))² 2^-k) / 3.
func ertlTau(x float64) float64 {
	if x == 0 || x == 1 {
		return 0
	}
	y, z := 1.0, 1-x
	for {
		x = math.Sqrt(x)
		zp := z
		y *= 0.5
		d := 1 - x
		z -= d * d * y
		if z == zp {
			return z / 3
		}
	}
}

// mix64 is MurmurHash3's 64-bit finalizer: a bijection with full avalanche.
func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}
