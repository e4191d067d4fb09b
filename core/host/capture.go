package host

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/netguardian/netguardian/sdk"
)

// CaptureLoss describes packets a capture could not deliver because its
// process died: a live source cannot replay what arrived while it was down.
type CaptureLoss struct {
	From, To uint64 // input indexes [From, To) that never arrived
}

// RunCapture streams p's batches into handle until the input ends (nil),
// ctx ends, handle fails, or the plugin reports an error. When the plugin
// process dies it is restarted and asked to resume after the last packet
// received, so a file replay loses nothing.
func (p *Plugin) RunCapture(ctx context.Context, handle func(*sdk.PacketBatch) error, onLoss func(CaptureLoss)) error {
	var next uint64
	for {
		conn, err := p.Conn()
		if err != nil {
			return err
		}
		stream, err := conn.Capture(ctx, next)
		if err == nil {
			err = p.drain(stream, &next, handle, onLoss)
			if err == nil || errors.Is(err, errHandler) {
				return errors.Unwrap(err)
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !Crashed(conn) {
			p.CountFailure(err)
			return fmt.Errorf("capture %q: %w", p.spec.Name, err)
		}
		if rerr := p.Restart(ctx, conn, err); rerr != nil {
			return fmt.Errorf("capture %q: %w", p.spec.Name, rerr)
		}
	}
}

var errHandler = errors.New("handler")

type handlerError struct{ err error }

func (e handlerError) Error() string   { return e.err.Error() }
func (e handlerError) Unwrap() error   { return e.err }
func (e handlerError) Is(t error) bool { return t == errHandler }

func (p *Plugin) drain(stream *sdk.PacketStream, next *uint64, handle func(*sdk.PacketBatch) error, onLoss func(CaptureLoss)) error {
	for {
		b, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		n := uint64(b.Len())
		switch {
		case b.FirstIndex > *next:
			if onLoss != nil {
				onLoss(CaptureLoss{From: *next, To: b.FirstIndex})
			}
		case b.FirstIndex < *next:
			// A resumed source repeated packets we already have: drop the overlap.
			skip := *next - b.FirstIndex
			if skip >= n {
				continue
			}
			trimBatch(b, int(skip))
		}
		*next = b.FirstIndex + uint64(b.Len())
		if err := handle(b); err != nil {
			return handlerError{err}
		}
	}
}

// trimBatch drops the first k rows of b.
func trimBatch(b *sdk.PacketBatch, k int) {
	b.FirstIndex += uint64(k)
	b.Timestamps = b.Timestamps[k:]
	b.SrcAddrs, b.DstAddrs = b.SrcAddrs[16*k:], b.DstAddrs[16*k:]
	b.SrcPorts, b.DstPorts = b.SrcPorts[k:], b.DstPorts[k:]
	b.Protocols, b.Lengths = b.Protocols[k:], b.Lengths[k:]
	b.TCPFlags, b.Flags = b.TCPFlags[k:], b.Flags[k:]
	if len(b.Frames) > 0 {
		b.Frames = b.Frames[k:]
	}
}
