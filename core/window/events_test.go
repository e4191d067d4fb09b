package window

import (
	"math/rand"
	"reflect"
	"testing"
	"time"
)

// TestFlushInvariance: applying the queued record updates at any point
// (after every packet, every few packets, or only when windows close)
// gives the same windows and statistics, bit for bit, including with
// sketches, refused sources and disordered input.
func TestFlushInvariance(t *testing.T) {
	for seed := int64(1); seed <= 200; seed++ {
		rng := rand.New(rand.NewSource(seed))
		lateness := time.Duration(rng.Intn(3)) * 1500 * time.Millisecond
		opts := Options{Lateness: lateness}
		if seed%2 == 0 {
			opts.DistinctExactLimit = 3
		}
		if seed%3 == 0 {
			opts.MaxSources = 1 + rng.Intn(6)
		}
		ps := genStream(rng, lateness)
		run := func(flushAt int) (*collector, Stats) {
			c := &collector{}
			a, err := New(opts, c.emit)
			if err != nil {
				t.Fatal(err)
			}
			if flushAt > 0 {
				a.ev.max = flushAt
			}
			split := rand.New(rand.NewSource(seed))
			for rest := ps; len(rest) > 0; {
				k := min(len(rest), 1+split.Intn(60))
				if err := a.Add(batchOf(rest[:k])); err != nil {
					t.Fatal(err)
				}
				rest = rest[k:]
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			return c, a.Stats()
		}
		want, wantStats := run(1 << 30) // only when windows close
		for _, at := range []int{1, 2, 3, 7, 64} {
			got, gotStats := run(at)
			if err := sameBatches(got.batches, want.batches); err != nil {
				t.Fatalf("seed %d, flush at %d: %v", seed, at, err)
			}
			if !reflect.DeepEqual(gotStats, wantStats) {
				t.Fatalf("seed %d, flush at %d: stats %+v, want %+v", seed, at, gotStats, wantStats)
			}
		}
	}
}
