package window

import (
	"math/rand"
	"slices"
	"testing"
)

// The reorder buffer releases packets in (timestamp, arrival) order across
// many FIFO blocks, with the buffer emptied and refilled on the way, and
// keeps reusing its blocks rather than allocating new ones.
func TestReorderReleasesInOrderAcrossBlocks(t *testing.T) {
	for seed := int64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewSource(seed))
		var o reorder
		var got, all []rec
		var seq uint64
		ts := int64(0)
		floor := int64(0) // newest released: nothing may come in below it
		release := func(upTo int64) {
			for {
				p := o.peek()
				if p == nil || p.ts > upTo {
					return
				}
				var r rec
				if o.isHead(p) && rng.Intn(2) == 0 {
					r = *p // processed in place, as Aggregator.release does
					o.dropHead()
				} else {
					o.pop(p, &r)
				}
				got = append(got, r)
				floor = r.ts
			}
		}
		for range 30_000 {
			ts += int64(rng.Intn(3))
			r := rec{ts: ts, seq: seq}
			if rng.Intn(50) == 0 {
				r.ts = max(floor, r.ts-int64(rng.Intn(20))) // out of order: the heap
			}
			seq++
			all = append(all, r)
			if rng.Intn(2) == 0 {
				o.push(&r) // copies in, to the FIFO when in order
			} else if slot := o.tail(r.ts); slot != nil {
				*slot = r // filled in place, as Aggregator.Add does
			} else {
				o.push(&r)
			}
			switch rng.Intn(1000) {
			case 0:
				release(ts) // empty it
			default:
				release(ts - int64(9_000+rng.Intn(2_000))) // hold a few blocks' worth
			}
		}
		release(ts)
		if o.len() != 0 {
			t.Fatalf("seed %d: %d packets left", seed, o.len())
		}
		want := slices.Clone(all)
		slices.SortStableFunc(want, func(a, b rec) int {
			if a.before(&b) {
				return -1
			}
			if b.before(&a) {
				return 1
			}
			return 0
		})
		// Nothing arrives below what was released (the aggregator's
		// watermark guarantees that), so the whole stream comes out sorted.
		if !slices.Equal(got, want) {
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("seed %d: release %d is %+v, want %+v", seed, i, got[i], want[i])
				}
			}
			t.Fatalf("seed %d: released %d of %d", seed, len(got), len(want))
		}
		if n := len(o.blocks) - o.bh + len(o.spare); n > 8 {
			t.Fatalf("seed %d: %d blocks kept; drained blocks are not being reused", seed, n)
		}
	}
}
