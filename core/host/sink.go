package host

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netguardian/netguardian/core/spool"
	"github.com/netguardian/netguardian/sdk"
)

// SinkWriter delivers record batches to a sink plugin in order and keeps
// every batch until the sink acknowledges it. When the sink reports a
// failure (its database is down, say) the batch is sent again after a
// backoff; when the process dies it is restarted and every unacknowledged
// batch is re-sent. Sinks must therefore treat a repeated Seq as a no-op.
type SinkWriter struct {
	p      *Plugin
	in     chan sdk.Records
	window int

	mu      sync.Mutex
	pending map[uint64]sdk.Records // sent, not yet acknowledged
	order   []uint64               // pending seqs in send order
	sentAt  map[uint64]time.Time   // when each pending batch was (last) sent

	// OnAck, when set before Run, gets each batch's send-to-ack latency.
	OnAck func(time.Duration)
	// onAcked, when set before Run (by tests), gets the Seq of each
	// acknowledged batch, in the order the acks came.
	onAcked func(seq uint64)

	// spool, when set, replaces the in-memory queue (NewSpooledSinkWriter).
	spool       *spool.Spool
	dropPackets bool

	seq      atomic.Uint64
	acked    atomic.Uint64
	rejected atomic.Uint64 // acks that carried an error (batch kept and retried)
	closed   atomic.Bool
	done     chan struct{}
	err      error
}

// NewSinkWriter returns a writer with a queue of queue batches and at most
// window batches in flight.
func (p *Plugin) NewSinkWriter(queue, window int) *SinkWriter {
	w := &SinkWriter{p: p, in: make(chan sdk.Records, queue), window: max(window, 1), pending: map[uint64]sdk.Records{}, sentAt: map[uint64]time.Time{}, done: make(chan struct{})}
	return w
}

// Write queues rec for delivery, blocking while the queue is full: that
// back-pressure is how a slow sink slows the pipeline instead of losing
// features or alerts.
func (w *SinkWriter) Write(ctx context.Context, rec sdk.Records) error {
	if w.closed.Load() {
		return errors.New("sink writer closed")
	}
	if w.spool != nil {
		return w.writeSpool(ctx, rec)
	}
	rec.Seq = w.seq.Add(1)
	select {
	case w.in <- rec:
		return nil
	case <-w.done:
		if w.err != nil {
			return w.err
		}
		return errors.New("sink writer stopped")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Queued returns the batches waiting in the queue and in flight.
func (w *SinkWriter) Queued() int {
	if w.spool != nil {
		n, _ := w.spool.Pending()
		return n
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.in) + len(w.pending)
}

// Acked returns how many batches the sink has acknowledged.
func (w *SinkWriter) Acked() uint64 { return w.acked.Load() }

// Rejected returns how many times the sink answered a batch with an error.
func (w *SinkWriter) Rejected() uint64 { return w.rejected.Load() }

// Close stops accepting batches; Run returns once everything queued is
// acknowledged or ctx (given to Run) ends.
func (w *SinkWriter) Close() {
	if w.closed.CompareAndSwap(false, true) {
		close(w.in)
	}
}

// Run delivers batches until Close has been called and all are
// acknowledged, or ctx ends (what is unacknowledged then is returned by
// Unacked, for the spool).
func (w *SinkWriter) Run(ctx context.Context) error {
	defer close(w.done)
	delay := 100 * time.Millisecond
	session := w.session
	if w.spool != nil {
		session = w.sessionSpool
	}
	for {
		finished, err := session(ctx)
		if finished {
			return nil
		}
		if ctx.Err() != nil {
			w.err = ctx.Err()
			return ctx.Err()
		}
		if errors.Is(err, ErrFailed) {
			w.err = err
			return err
		}
		w.p.log.Warn("sink delivery interrupted; retrying", "error", err, "unacked", w.Queued(), "retry_in", delay)
		select {
		case <-ctx.Done():
			w.err = ctx.Err()
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// Unacked returns the batches not yet acknowledged, in send order.
func (w *SinkWriter) Unacked() []sdk.Records {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]sdk.Records, 0, len(w.order))
	for _, s := range w.order {
		out = append(out, w.pending[s])
	}
	return out
}

// session runs one stream: re-sends every pending batch, then new ones.
// It returns finished=true when the input is closed and all is acked.
func (w *SinkWriter) session(ctx context.Context) (finished bool, err error) {
	ss, err := w.open(ctx)
	if err != nil {
		return false, err
	}
	defer ss.cancel()
	conn, stream, acks, ackErr := ss.conn, ss.stream, ss.acks, ss.ackErr
	for _, rec := range w.Unacked() {
		w.mu.Lock()
		w.sentAt[rec.Seq] = time.Now()
		w.mu.Unlock()
		if err := stream.Send(rec); err != nil {
			return false, w.crashCheck(ctx, conn, err)
		}
	}
	in := w.in
	for {
		w.mu.Lock()
		inflight := len(w.pending)
		w.mu.Unlock()
		recv := in
		if inflight >= w.window {
			recv = nil // wait for acks before sending more
		}
		if in == nil && inflight == 0 {
			_ = stream.CloseSend()
			return true, nil
		}
		select {
		case rec, ok := <-recv:
			if !ok {
				in = nil
				continue
			}
			w.mu.Lock()
			w.pending[rec.Seq] = rec
			w.order = append(w.order, rec.Seq)
			w.sentAt[rec.Seq] = time.Now()
			w.mu.Unlock()
			if err := stream.Send(rec); err != nil {
				return false, w.crashCheck(ctx, conn, err)
			}
		case a := <-acks:
			if a.Err != "" {
				return false, w.rejectedAck(a) // reconnect after a backoff and re-send
			}
			w.ack(a.Seq)
		case err := <-ackErr:
			return false, w.crashCheck(ctx, conn, err)
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// sinkStream is one open write stream to the sink, with its acks read by
// a goroutine of its own.
type sinkStream struct {
	conn   *sdk.Conn
	stream *sdk.RecordStream
	acks   chan sdk.Ack
	ackErr chan error
	ctx    context.Context
	cancel context.CancelFunc
}

// open starts a write stream on the current connection.
func (w *SinkWriter) open(ctx context.Context) (*sinkStream, error) {
	conn, err := w.p.Conn()
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	stream, err := conn.OpenRecords(sctx)
	if err != nil {
		cancel()
		return nil, w.crashCheck(ctx, conn, err)
	}
	ss := &sinkStream{conn: conn, stream: stream, acks: make(chan sdk.Ack, w.window), ackErr: make(chan error, 1), ctx: sctx, cancel: cancel}
	go func() {
		for {
			a, err := stream.Recv()
			if err != nil {
				ss.ackErr <- err
				return
			}
			ss.acks <- a
		}
	}()
	return ss, nil
}

// rejectedAck counts a batch the sink could not store and returns why.
func (w *SinkWriter) rejectedAck(a sdk.Ack) error {
	w.rejected.Add(1)
	err := fmt.Errorf("sink %q could not store batch %d: %s", w.p.spec.Name, a.Seq, a.Err)
	w.p.CountFailure(err)
	return err
}

func (w *SinkWriter) ack(seq uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.pending[seq]; !ok {
		return // a duplicate ack for a re-sent batch
	}
	if w.OnAck != nil {
		w.OnAck(time.Since(w.sentAt[seq]))
	}
	if w.onAcked != nil {
		w.onAcked(seq)
	}
	delete(w.sentAt, seq)
	delete(w.pending, seq)
	for i, s := range w.order {
		if s == seq {
			w.order = append(w.order[:i], w.order[i+1:]...)
			break
		}
	}
	w.acked.Add(1)
}

func (w *SinkWriter) crashCheck(ctx context.Context, conn *sdk.Conn, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if Crashed(conn) {
		if rerr := w.p.Restart(ctx, conn, err); rerr != nil {
			return rerr
		}
		return fmt.Errorf("sink %q restarted after: %w", w.p.spec.Name, err)
	}
	return err
}
