package main

import (
	"context"
	"errors"
	"testing"
	"time"
)

func queued(ctx context.Context, kind itemKind, rows int) *item {
	return &item{kind: kind, rows: rows, ctx: ctx, done: make(chan error, 1)}
}

// A writer takes the oldest waiting item and every later item of the same
// table that still fits in batch_rows; other tables' items wait for the
// next take, in order. An item whose Write gave up is answered, not taken.
func TestGroupQueueTake(t *testing.T) {
	ctx := context.Background()
	gone, cancel := context.WithCancel(ctx)
	cancel()
	q := newGroupQueue()
	p1 := queued(ctx, kindPackets, 1024)
	f1 := queued(ctx, kindFeatures, 4000)
	p2 := queued(ctx, kindPackets, 1024)
	p3 := queued(gone, kindPackets, 1024) // its Write has returned
	p4 := queued(ctx, kindPackets, 3000)  // does not fit after p1 and p2
	p5 := queued(ctx, kindPackets, 512)
	f2 := queued(ctx, kindFeatures, 4000)
	q.put([]*item{p1, f1, p2, p3, p4, p5, f2})

	for _, want := range [][]*item{{p1, p2, p5}, {f1}, {p4}, {f2}} {
		got := q.take(ctx, 5000, 0)
		if len(got) != len(want) {
			t.Fatalf("took %d items, want %d", len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("item %d of the group is not the expected one (kind %d, %d rows)", i, got[i].kind, got[i].rows)
			}
		}
	}
	select {
	case err := <-p3.done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("abandoned item answered %v, want context.Canceled", err)
		}
	default:
		t.Error("abandoned item not answered")
	}
	// An item larger than batch_rows alone is still taken.
	big := queued(ctx, kindAlerts, 9000)
	q.put([]*item{big})
	if got := q.take(ctx, 5000, 0); len(got) != 1 || got[0] != big {
		t.Fatalf("oversized item not taken alone: %d items", len(got))
	}
	// An empty queue blocks until ctx ends.
	short, stop := context.WithTimeout(ctx, 20*time.Millisecond)
	defer stop()
	if got := q.take(short, 5000, 0); got != nil {
		t.Fatalf("take on an empty queue returned %d items", len(got))
	}
	// After drain, waiting and new items are answered with errClosed.
	late := queued(ctx, kindPackets, 1)
	waiting := queued(ctx, kindPackets, 1)
	q.put([]*item{waiting})
	q.drain()
	q.put([]*item{late})
	for _, it := range []*item{waiting, late} {
		if err := <-it.done; !errors.Is(err, errClosed) {
			t.Errorf("item after drain answered %v, want errClosed", err)
		}
	}
}

// With flush_interval, a writer holds a group under batch_rows for later
// items to join it, and stops waiting once batch_rows rows wait or the
// oldest item has waited the interval.
func TestGroupQueueLingers(t *testing.T) {
	ctx := context.Background()
	q := newGroupQueue()
	first := queued(ctx, kindPackets, 1000)
	q.put([]*item{first})
	took := make(chan []*item, 1)
	go func() { took <- q.take(ctx, 3000, time.Hour) }()
	second := queued(ctx, kindPackets, 1000)
	q.put([]*item{second})
	select {
	case g := <-took:
		t.Fatalf("took a group of %d items with 2000 of 3000 rows waiting and an hour to wait", len(g))
	case <-time.After(50 * time.Millisecond):
	}
	third := queued(ctx, kindPackets, 1000) // batch_rows reached: no more waiting
	q.put([]*item{third})
	if g := <-took; len(g) != 3 || g[0] != first || g[2] != third {
		t.Fatalf("group of %d items, want the three", len(g))
	}

	// A lone item is taken once it has waited the interval.
	alone := queued(ctx, kindAlerts, 1)
	q.put([]*item{alone})
	if g := q.take(ctx, 3000, 30*time.Millisecond); len(g) != 1 || g[0] != alone || time.Since(alone.queued) < 30*time.Millisecond {
		t.Fatalf("lone item: group of %d after %v", len(g), time.Since(alone.queued))
	}
}
