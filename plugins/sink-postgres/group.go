package main

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Group commit. Every Write encodes its batch into items (at most
// batch_rows rows each, in PostgreSQL's binary COPY format) and queues
// them; a few writer goroutines, each on its own pooled connection, take
// whatever items of one kind are waiting (up to batch_rows rows) and store
// them in one transaction. Each Write returns once all its items are
// committed, so a batch is acknowledged only after its commit, as before;
// what changes is that the transfer and encoding of the next batches
// overlap the COPY of the current ones, and that under load several
// batches share one transaction (one COPY, one commit) instead of paying
// for their own. By default nothing waits for a timer: an item waits only
// for a free writer, so a quiet sensor's batch is written at once. With
// flush_interval, a writer holds a group under batch_rows rows until its
// oldest item has waited that long, trading latency for fewer, larger
// transactions.

// itemKind says which table an item goes to.
type itemKind uint8

const (
	kindPackets itemKind = iota
	kindFeatures
	kindAlerts
)

func (k itemKind) table() string {
	switch k {
	case kindPackets:
		return tablePackets
	case kindFeatures:
		return tableFeatures
	}
	return tableAlerts
}

// item is part of one Write, waiting to be committed.
type item struct {
	kind    itemKind
	rows    int
	buf     *copyBuf // the rows, COPY-encoded; the writer recycles it
	buckets []int64  // partition buckets the rows fall in
	newest  int64    // newest time of the rows (Unix seconds), for retention

	// packets only: the chunk's key in raw_packet_batches and first time.
	key   [16]byte
	first int64 // Unix nanoseconds

	ctx    context.Context // the Write's: an item whose Write gave up is skipped
	done   chan error      // buffered: the writer never blocks on it
	queued time.Time       // when put queued it (flush_interval counts from it)
}

// groupQueue holds the items waiting for a writer, oldest first.
type groupQueue struct {
	mu     sync.Mutex
	items  []*item
	closed bool          // drained: nobody takes items any more
	wake   chan struct{} // a token when items may be waiting
}

func newGroupQueue() *groupQueue { return &groupQueue{wake: make(chan struct{}, 1)} }

func (q *groupQueue) put(items []*item) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		for _, it := range items {
			it.finish(errClosed)
		}
		return
	}
	now := time.Now()
	for _, it := range items {
		it.queued = now
	}
	q.items = append(q.items, items...)
	q.mu.Unlock()
	q.signal()
}

func (q *groupQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take waits for items and returns the oldest one with every later item of
// the same kind that fits in maxRows rows (the oldest is taken even when
// it alone is larger). Items whose Write has given up are answered and
// dropped. While such a group has fewer than maxRows rows and its oldest
// item has waited less than linger, take waits for more. It returns nil
// when ctx ends.
func (q *groupQueue) take(ctx context.Context, maxRows int, linger time.Duration) []*item {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		q.mu.Lock()
		if wait := q.lingerLocked(maxRows, linger); wait > 0 {
			q.mu.Unlock()
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			select {
			case <-q.wake: // more items: a fuller group, or batch_rows reached
			case <-timer.C:
			case <-ctx.Done():
				return nil
			}
			continue
		}
		var group []*item
		rows := 0
		keep := q.items[:0]
		for _, it := range q.items {
			switch {
			case it.ctx.Err() != nil:
				it.finish(it.ctx.Err())
			case len(group) == 0 || (it.kind == group[0].kind && rows+it.rows <= maxRows):
				group = append(group, it)
				rows += it.rows
			default:
				keep = append(keep, it)
			}
		}
		clear(q.items[len(keep):]) // no stale pointers past the end
		q.items = keep
		more := len(q.items) > 0
		q.mu.Unlock()
		if more {
			q.signal() // another writer can take the rest
		}
		if len(group) > 0 {
			return group
		}
		select {
		case <-q.wake:
		case <-ctx.Done():
			return nil
		}
	}
}

// lingerLocked is how much longer the group take would form now should
// wait for more items: 0 when linger is off, nothing waits, the group
// reaches maxRows, or its oldest item has waited linger already.
func (q *groupQueue) lingerLocked(maxRows int, linger time.Duration) time.Duration {
	if linger <= 0 || len(q.items) == 0 {
		return 0
	}
	first, rows := q.items[0], 0
	for _, it := range q.items {
		if it.kind == first.kind {
			if rows += it.rows; rows >= maxRows {
				return 0
			}
		}
	}
	return time.Until(first.queued.Add(linger))
}

// drain answers every waiting item, and any put later, with errClosed
// (the writers have stopped).
func (q *groupQueue) drain() {
	q.mu.Lock()
	items := q.items
	q.items, q.closed = nil, true
	q.mu.Unlock()
	for _, it := range items {
		it.finish(errClosed)
	}
}

// finish answers the item's Write and recycles its buffer.
func (it *item) finish(err error) {
	if it.buf != nil {
		putCopyBuf(it.buf)
		it.buf = nil
	}
	it.done <- err
}

// errClosed answers items still queued when the configuration is replaced
// or the plugin stops; the core sends them again.
var errClosed = errors.New("sink-postgres: configuration replaced while the batch was queued; it will be sent again")

// runWriter commits groups of items until ctx ends.
func (st *state) runWriter(ctx context.Context) {
	for {
		group := st.q.take(ctx, st.cfg.BatchRows, st.cfg.FlushEvery)
		if group == nil {
			return
		}
		err := st.commit(ctx, group)
		if err != nil && len(group) > 1 && isRejection(err) {
			// The database refused something in the group: commit each
			// item alone, so one bad batch does not hold the others back.
			for _, it := range group {
				it.finish(st.commit(ctx, []*item{it}))
			}
			continue
		}
		for _, it := range group {
			it.finish(err)
		}
	}
}

// isRejection reports whether err is the server refusing a statement (as
// opposed to the connection failing, when retrying item by item would only
// multiply the wait).
func isRejection(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && !isNoPartition(err)
}

// commit stores one group in one transaction (two when features or alerts
// turn out to be stored already) and applies retention afterwards.
func (st *state) commit(ctx context.Context, group []*item) error {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	kind := group[0].kind
	table := kind.table()
	var buckets []int64
	newest := int64(minTime)
	for _, it := range group {
		for _, b := range it.buckets {
			if !slices.Contains(buckets, b) {
				buckets = append(buckets, b)
			}
		}
		newest = max(newest, it.newest)
	}
	err := st.retryNoPartition(ctx, table, buckets, func() error {
		switch kind {
		case kindPackets:
			return st.commitPackets(ctx, group)
		case kindFeatures:
			return st.commitNew(ctx, tableFeatures, st.featureInsertColumns(), "ng_stage_features", st.featureStageDDL(), group,
				&st.n.features, &st.n.featuresDup)
		}
		return st.commitNew(ctx, tableAlerts, alertColumns, "ng_stage_alerts", alertStageDDL, group, &st.n.alerts, &st.n.alertsDup)
	})
	if err != nil {
		return err
	}
	st.n.transactions.Add(1)
	st.parts.wrote(ctx, table, newest)
	return nil
}
