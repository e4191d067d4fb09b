package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/netguardian/netguardian/core/spool"
	"github.com/netguardian/netguardian/sdk"
)

// This file is how batches enter a sink's queue. Features and alerts are
// never dropped: they reach the queue or wait. Raw packets may be shed
// (counted) so that features and alerts always find room.

// rawHighWater is the share of a sink's spool raw packets may fill: above
// it they are dropped (drop_raw_packets) or wait, and the rest is kept
// for features and alerts, which would otherwise queue behind a spool
// that raw packets keep full.
const rawHighWater = 0.75

// errShed is a raw-packet batch a sink could not take (its spool is past
// the high-water mark, or failed); the caller counts it as dropped.
var errShed = errors.New("raw packets shed")

// keep queues a feature or alert batch for s. Through a spool it waits
// while the spool is full (back-pressure), and retries a failed write (a
// disk error: counted and logged, the producer waits) until the batch is
// on disk. Once the drain has timed out nothing will free room, so what
// the pipeline still holds goes past the spool's bound: a stop keeps on
// disk whatever was accepted. A batch that still cannot be written then,
// or that a sink without a spool no longer takes, is lost: counted per
// sink, logged, and reported by Run.
func (p *Pipeline) keep(s *sinkStage, rec sdk.Records) {
	var err error
	if s.spool != nil {
		err = p.spoolKeep(s, rec)
	} else {
		err = s.write(s.writeCtx(p.runCtx()), rec)
	}
	if err != nil {
		s.lost.Add(1)
		p.log.Error("a batch could not be queued for the sink and is lost", "sink", s.p.Name(), "kind", recordKind(rec),
			"rows", recordRows(rec), "error", err)
	}
}

func (p *Pipeline) runCtx() context.Context {
	if p.ctx == nil {
		return context.Background()
	}
	return p.ctx
}

func (p *Pipeline) spoolKeep(s *sinkStage, rec sdk.Records) error {
	if s.isRetired() {
		return nil // a sink a reload removed takes nothing more
	}
	payload, err := sdk.MarshalRecords(rec)
	if err != nil {
		return err
	}
	// wctx ends when a reload removes the sink or the drain times out.
	ctx := s.writeCtx(p.runCtx())
	waited := false
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 5*time.Second) {
		_, err := s.spool.Append(payload)
		if errors.Is(err, spool.ErrFull) {
			if !waited {
				s.fullWaits.Add(1)
				waited = true
			}
			_, err = s.spool.AppendWait(ctx, payload)
		}
		switch {
		case err == nil:
			return nil
		case errors.Is(err, spool.ErrTooLarge):
			halves := splitRecords(rec)
			if halves == nil {
				return err
			}
			for _, h := range halves {
				if err := p.spoolKeep(s, h); err != nil {
					return err
				}
			}
			return nil
		case s.isRetired():
			return nil // a sink a reload removed takes nothing more
		case ctx.Err() != nil:
			// The drain timed out: no acknowledgement will free room.
			if _, err := s.spool.AppendLimit(payload, math.MaxInt64); err != nil {
				s.writeErrors.Add(1)
				return fmt.Errorf("spool it past its bound at the drain timeout: %w", err)
			}
			s.pastBound.Add(1)
			return nil
		}
		s.writeErrors.Add(1)
		p.log.Error("sink spool write failed; features and alerts wait until it works", "sink", s.p.Name(),
			"kind", recordKind(rec), "retry_in", delay, "error", err)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
		}
	}
}

// spoolPackets appends a raw-packet batch to s's spool while the spool is
// below its high-water mark. Above it the batch is shed (errShed) when
// drop is set, else it waits for room under the mark, or for ctx (the
// capture's) to end.
func (p *Pipeline) spoolPackets(ctx context.Context, s *sinkStage, rec sdk.Records, drop bool) error {
	if s.isRetired() {
		return nil
	}
	payload, err := sdk.MarshalRecords(rec)
	if err != nil {
		return err
	}
	if drop {
		_, err = s.spool.AppendLimit(payload, s.rawLimit)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, spool.ErrFull), errors.Is(err, spool.ErrTooLarge):
			return errShed
		}
		// Raw packets may be dropped; a disk error is counted and logged
		// (at 1, 2, 4, 8... errors: it may repeat for every batch).
		if n := s.writeErrors.Add(1); n&(n-1) == 0 {
			p.log.Error("sink spool write failed; raw packets are dropped (features and alerts wait)", "sink", s.p.Name(),
				"errors", n, "error", err)
		}
		return errShed
	}
	if s.wctx != nil {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(s.wctx, cancel)()
		ctx = wctx
	}
	_, err = s.spool.AppendWaitLimit(ctx, payload, s.rawLimit)
	if err != nil && s.isRetired() {
		return nil
	}
	if err != nil && ctx.Err() == nil {
		s.writeErrors.Add(1)
	}
	return err
}

func (s *sinkStage) isRetired() bool {
	select {
	case <-s.retired:
		return true
	default:
		return false
	}
}

// splitRecords halves a feature or alert batch by rows (nil when it has
// one row or is packets): a batch too large for the spool goes in parts.
func splitRecords(rec sdk.Records) []sdk.Records {
	switch {
	case rec.Features != nil && len(rec.Features.Rows) > 1:
		f := rec.Features
		h := len(f.Rows) / 2
		a, b := *f, *f
		a.Rows, b.Rows = f.Rows[:h], f.Rows[h:]
		return []sdk.Records{{Features: &a}, {Features: &b}}
	case rec.Packets == nil && rec.Features == nil && len(rec.Alerts) > 1:
		h := len(rec.Alerts) / 2
		return []sdk.Records{{Alerts: rec.Alerts[:h]}, {Alerts: rec.Alerts[h:]}}
	}
	return nil
}

func recordKind(rec sdk.Records) string {
	switch {
	case rec.Packets != nil:
		return "packets"
	case rec.Features != nil:
		return "features"
	}
	return "alerts"
}

func recordRows(rec sdk.Records) int {
	switch {
	case rec.Packets != nil:
		return rec.Packets.Len()
	case rec.Features != nil:
		return len(rec.Features.Rows)
	}
	return len(rec.Alerts)
}
