package sdk

import (
	"context"
	"sync"
	"time"
)

// PacketWriter batches packets for the core. Capture plugins call Write for
// every packet; the writer sends a batch when it is full (BatchSize
// packets, or MaxBatchFrameBytes of raw frames) or FlushInterval after its
// first packet, whichever comes first, so a quiet link still delivers
// promptly. Write blocks when the core applies back-pressure.
type PacketWriter struct {
	send     func(*PacketBatch) error
	size     int
	interval time.Duration
	frames   bool
	snaplen  int

	mu       sync.Mutex
	cur      *PacketBatch
	arena    []byte // backing store of the current batch's frames
	next     uint64 // input index of the next packet
	counters CaptureCounters
	started  time.Time // when cur got its first packet
	err      error
}

// MaxBatchFrameBytes bounds the raw frames one batch carries: with frames
// a packet is ~10× bigger, and the queues between stages count batches.
const MaxBatchFrameBytes = 1 << 20

// NewPacketWriter returns a writer that hands full batches to send. It is
// used by Serve and by tests of capture plugins; send must not keep the
// batch after it returns.
func NewPacketWriter(rt Runtime, from uint64, send func(*PacketBatch) error) *PacketWriter {
	size := rt.BatchSize
	if size <= 0 {
		size = 8192 // the core's default pipeline.batch_size
	}
	interval := rt.FlushInterval
	if interval <= 0 {
		interval = 100 * time.Millisecond
	}
	w := &PacketWriter{send: send, size: size, interval: interval, frames: rt.IncludeFrames, snaplen: rt.FrameSnaplen, next: from}
	w.cur = newBatch(size)
	return w
}

func newBatch(n int) *PacketBatch {
	return &PacketBatch{
		Timestamps: make([]int64, 0, n), SrcAddrs: make([]byte, 0, 16*n), DstAddrs: make([]byte, 0, 16*n),
		SrcPorts: make([]uint32, 0, n), DstPorts: make([]uint32, 0, n), Protocols: make([]byte, 0, n),
		Lengths: make([]uint32, 0, n), TCPFlags: make([]byte, 0, n), Flags: make([]byte, 0, n),
	}
}

// IncludeFrames reports whether raw frames are wanted; when false, plugins
// may skip keeping p.Frame around.
func (w *PacketWriter) IncludeFrames() bool { return w.frames }

// Next returns the input index the next written packet will get.
func (w *PacketWriter) Next() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.next
}

// SetCounters records the plugin's cumulative counters; they travel with
// the next batch.
func (w *PacketWriter) SetCounters(c CaptureCounters) {
	w.mu.Lock()
	w.counters = c
	w.mu.Unlock()
}

// Write adds one packet. p and p.Frame may be reused by the caller as soon
// as Write returns.
func (w *PacketWriter) Write(p *Packet) error {
	w.mu.Lock()
	err := w.writeLocked(p)
	w.mu.Unlock()
	return err
}

func (w *PacketWriter) writeLocked(p *Packet) error {
	if w.err != nil {
		return w.err
	}
	b := w.cur
	if b.Len() == 0 {
		b.FirstIndex = w.next
		w.started = time.Now()
	}
	frame := p.Frame
	p.Frame = nil
	b.Append(p)
	if w.frames {
		if w.snaplen > 0 && len(frame) > w.snaplen {
			frame = frame[:w.snaplen]
		}
		start := len(w.arena)
		w.arena = append(w.arena, frame...)
		b.Frames = append(b.Frames, w.arena[start:len(w.arena):len(w.arena)])
	}
	p.Frame = frame
	w.next++
	if b.Len() >= w.size || len(w.arena) >= MaxBatchFrameBytes {
		return w.flushLocked()
	}
	return nil
}

// Flush sends the current partial batch, if any.
func (w *PacketWriter) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	return w.flushLocked()
}

func (w *PacketWriter) flushLocked() error {
	if w.cur.Len() == 0 {
		return nil
	}
	w.cur.Counters = w.counters
	if err := w.send(w.cur); err != nil {
		w.err = err
		return err
	}
	w.cur.Reset()
	if cap(w.arena) > 64<<20 { // do not pin a huge arena after a burst of jumbo frames
		w.arena = nil
	}
	w.arena = w.arena[:0]
	return nil
}

// runTimer flushes partial batches that have waited longer than the
// interval, until ctx ends.
func (w *PacketWriter) runTimer(ctx context.Context) {
	t := time.NewTicker(w.interval / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			w.mu.Lock()
			if w.err == nil && w.cur.Len() > 0 && now.Sub(w.started) >= w.interval {
				_ = w.flushLocked()
			}
			w.mu.Unlock()
		}
	}
}

// Start runs the writer's flush timer until ctx ends. Serve calls it; tests
// that drive a capture plugin directly may call it too.
func (w *PacketWriter) Start(ctx context.Context) { go w.runTimer(ctx) }
