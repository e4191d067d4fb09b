package host

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/netguardian/netguardian/core/spool"
	"github.com/netguardian/netguardian/sdk"
)

// A sink that runs Writes concurrently (sdk.ConcurrentSink) acknowledges
// batches in the order its Writes finish. Both writers, in memory and
// through the spool, must then forget exactly the acknowledged batches:
// every batch is stored once, no acknowledged batch is sent again, and
// nothing is left behind (a reopened spool holds nothing).
func TestSinkAcksOutOfOrder(t *testing.T) {
	const n = 20
	for _, spooled := range []bool{false, true} {
		name := "memory"
		if spooled {
			name = "spool"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out.jsonl")
			// Pairs (1,2) ... (17,18) are acknowledged second first.
			p := startTest(t, sdk.KindSink, map[string]any{"out": out, "write_concurrency": 2, "ack_out_of_order_below": n - 1})
			spoolDir := filepath.Join(dir, "spool")
			var sp *spool.Spool
			var w *SinkWriter
			if spooled {
				sp = openSpool(t, spoolDir)
				w = p.NewSpooledSinkWriter(sp, 2, false)
			} else {
				w = p.NewSinkWriter(4, 2)
			}
			var order []uint64 // read after Run returns
			w.onAcked = func(seq uint64) { order = append(order, seq) }

			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- w.Run(ctx) }()
			for i := range n {
				if err := w.Write(ctx, sdk.Records{Features: featureBatch(float64(i))}); err != nil {
					t.Fatal(err)
				}
			}
			w.Close()
			if err := <-done; err != nil {
				t.Fatal(err)
			}

			t.Logf("ack order: %v", order)
			for s := uint64(1); s+1 < n; s += 2 {
				i, j := slices.Index(order, s), slices.Index(order, s+1)
				if i < 0 || j < 0 || j > i {
					t.Errorf("acks of %d and %d at positions %d and %d: want %d acknowledged first", s, s+1, i, j, s+1)
				}
			}
			want := make([]uint64, n)
			for i := range want {
				want[i] = uint64(i + 1)
			}
			if !slices.Equal(slices.Sorted(slices.Values(order)), want) {
				t.Errorf("acks %v: want each of 1..%d once", order, n)
			}
			seen := readSeqs(t, out)
			for s := uint64(1); s <= n; s++ {
				if seen[s] != 1 {
					t.Errorf("batch %d stored %d times, want once", s, seen[s])
				}
			}
			if len(seen) != n || w.Acked() != n || w.Rejected() != 0 {
				t.Errorf("stored %d distinct batches, acked %d, rejected %d; want %d, %d, 0", len(seen), w.Acked(), w.Rejected(), n, n)
			}
			if !spooled {
				if u := w.Unacked(); len(u) != 0 {
					t.Errorf("%d batches still unacknowledged", len(u))
				}
				return
			}
			if pending, _ := sp.Pending(); pending != 0 {
				t.Errorf("spool holds %d batches after every ack", pending)
			}
			if err := sp.Close(); err != nil {
				t.Fatal(err)
			}
			sp = openSpool(t, spoolDir) // the acks are on disk: nothing to replay
			defer sp.Close()
			if pending, _ := sp.Pending(); pending != 0 {
				t.Errorf("reopened spool replays %d batches", pending)
			}
		})
	}
}
