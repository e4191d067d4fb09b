package host

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/netguardian/netguardian/core/spool"
	"github.com/netguardian/netguardian/sdk"
)

// ErrSpoolFull is returned by Write for a raw-packet batch that did not fit
// in a full spool; the caller counts it as dropped.
var ErrSpoolFull = errors.New("sink spool full")

// NewSpooledSinkWriter returns a writer whose queue is the disk spool sp:
// every batch is written (and fsynced) there before Write returns, sent to
// the sink from there in order, and deleted only once the sink has
// acknowledged it. Batches left when the core stops, or dies, are sent on
// the next start. Raw-packet batches are dropped (ErrSpoolFull) when the
// spool is full and dropPackets is set; anything else waits for room.
func (p *Plugin) NewSpooledSinkWriter(sp *spool.Spool, window int, dropPackets bool) *SinkWriter {
	w := p.NewSinkWriter(0, window)
	w.spool, w.dropPackets = sp, dropPackets
	return w
}

func (w *SinkWriter) writeSpool(ctx context.Context, rec sdk.Records) error {
	b, err := sdk.MarshalRecords(rec)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if rec.Packets != nil && w.dropPackets {
		if _, err := w.spool.Append(b); errors.Is(err, spool.ErrFull) {
			return ErrSpoolFull
		} else if err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		return nil
	}
	if _, err := w.spool.AppendWait(ctx, b); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	return nil
}

// sessionSpool runs one stream fed from the spool: it re-reads every
// unacknowledged batch from disk, in order, then follows new ones.
func (w *SinkWriter) sessionSpool(ctx context.Context) (finished bool, err error) {
	ss, err := w.open(ctx)
	if err != nil {
		return false, err
	}
	defer ss.cancel()
	conn, stream, acks, ackErr, sctx := ss.conn, ss.stream, ss.acks, ss.ackErr, ss.ctx
	// The reader runs ahead by at most window batches.
	records := make(chan sdk.Records)
	readErr := make(chan error, 1)
	slots := make(chan struct{}, w.window)
	go func() {
		r := w.spool.Reader(0)
		defer r.Close()
		for {
			select {
			case slots <- struct{}{}:
			case <-sctx.Done():
				return
			}
			rec, err := r.NextWait(sctx)
			if err != nil {
				var corrupt *spool.CorruptError
				if errors.As(err, &corrupt) {
					w.p.log.Error("spool damaged; the damaged batches are lost", "error", err)
					<-slots
					continue
				}
				readErr <- err
				return
			}
			out, err := sdk.UnmarshalRecords(rec.Payload)
			if err != nil {
				w.p.log.Error("spooled batch unreadable; skipped", "seq", rec.Seq, "error", err)
				_ = w.spool.Ack(rec.Seq)
				<-slots
				continue
			}
			out.Seq = rec.Seq
			select {
			case records <- out:
			case <-sctx.Done():
				return
			}
		}
	}()
	sent := map[uint64]time.Time{}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if w.closed.Load() && len(sent) == 0 {
			if n, _ := w.spool.Pending(); n == 0 {
				_ = stream.CloseSend()
				return true, nil
			}
		}
		select {
		case rec := <-records:
			sent[rec.Seq] = time.Now()
			if err := stream.Send(rec); err != nil {
				return false, w.crashCheck(ctx, conn, err)
			}
		case a := <-acks:
			if a.Err != "" {
				return false, w.rejectedAck(a) // reconnect after a backoff; the spool re-sends
			}
			if t, ok := sent[a.Seq]; ok {
				delete(sent, a.Seq)
				if w.OnAck != nil {
					w.OnAck(time.Since(t))
				}
				if w.onAcked != nil {
					w.onAcked(a.Seq)
				}
				if err := w.spool.Ack(a.Seq); err != nil {
					return false, fmt.Errorf("spool ack %d: %w", a.Seq, err)
				}
				w.acked.Add(1)
				<-slots
			}
		case err := <-ackErr:
			return false, w.crashCheck(ctx, conn, err)
		case err := <-readErr:
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			return false, fmt.Errorf("spool read: %w", err)
		case <-tick.C: // re-check for the end after Close
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}
