package spool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
)

// CorruptError is returned by Reader.Next for a record found damaged
// after Open (the disk, or someone, changed a segment under the spool).
// The rest of that segment is counted lost (Stats.LostRecords) and the
// reader moves on to the next segment.
type CorruptError struct {
	Segment string
	Offset  int64
	Seq     uint64 // the damaged record's sequence number
	Lost    int    // unacknowledged records given up
	Err     error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("spool: record %d damaged in %s at offset %d (%d unacknowledged records lost): %v", e.Seq, e.Segment, e.Offset, e.Lost, e.Err)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// Reader reads the spool's unacknowledged records in sequence order,
// from the oldest segment to the newest record made visible (durable).
// A Reader is for one goroutine; a spool may have several readers.
type Reader struct {
	s    *Spool
	want uint64 // the smallest sequence number Next may return

	seg  *segment
	f    *os.File
	sc   *segmentScanner
	off  int64  // offset of the frame holding next
	next uint64 // the sequence number at off
}

// Reader returns a reader positioned at from: it yields the
// unacknowledged records with sequence numbers ≥ from (0: all of them).
func (s *Spool) Reader(from uint64) *Reader {
	return &Reader{s: s, want: max(from, 1)}
}

// Seek repositions r at from, as Reader(from) would: after a sink
// reconnects, Seek(0) replays everything it has not acknowledged.
func (r *Reader) Seek(from uint64) {
	r.drop()
	r.want = max(from, 1)
}

// Close releases the reader's file.
func (r *Reader) Close() error {
	r.drop()
	return nil
}

func (r *Reader) drop() {
	if r.f != nil {
		_ = r.f.Close()
	}
	r.seg, r.f, r.sc = nil, nil, nil
}

// Next returns the next unacknowledged record, io.EOF when there is none
// yet (Wait tells when to try again), or ErrClosed. The payload is the
// caller's.
func (r *Reader) Next() (Record, error) {
	s := r.s
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			r.drop()
			return Record{}, ErrClosed
		}
		if r.seg == nil || r.seg.deleted {
			r.drop()
			g := s.segmentFromLocked(r.want)
			if g == nil {
				r.want = max(r.want, s.visibleEndLocked())
				s.mu.Unlock()
				return Record{}, io.EOF
			}
			r.seg, r.off, r.next = g, segHeaderSize, g.first
		}
		g := r.seg
		if r.next >= g.first+uint64(g.visCount) {
			if g.sealed {
				// Every record of g has been seen: on to the next segment.
				nxt := s.segmentAfterLocked(g)
				s.mu.Unlock()
				r.drop()
				if nxt == nil {
					continue // g was the newest but sealed: retry from want
				}
				r.seg, r.off, r.next = nxt, segHeaderSize, nxt.first
				continue
			}
			r.want = max(r.want, s.visibleEndLocked())
			s.mu.Unlock()
			return Record{}, io.EOF
		}
		skip := r.next < r.want || g.isDone(r.next)
		limit := g.visible
		s.mu.Unlock()

		if r.f == nil {
			f, err := os.Open(g.path)
			if err != nil {
				if s.isDeleted(g) {
					continue // acknowledged and deleted meanwhile
				}
				return Record{}, fmt.Errorf("spool: open %s: %w", g.path, err)
			}
			r.f = f
			r.sc = newScanner(f, limit)
		}
		r.sc.size = limit // visible bytes only grow
		var seq uint64
		var n int64
		var p []byte
		var err error
		if skip { // the header says how far to skip; the payload is not read
			seq, n, err = r.sc.skipFrame(r.off, r.next)
		} else {
			seq, n, p, err = r.sc.frame(r.off, r.next)
		}
		if err != nil {
			return Record{}, r.damaged(g, err)
		}
		r.off += frameHeader + n
		r.next++
		r.want = max(r.want, seq+1)
		if skip {
			continue
		}
		return Record{Seq: seq, Payload: append([]byte(nil), p...)}, nil
	}
}

// NextWait is Next that waits for a record (or ctx, or Close).
func (r *Reader) NextWait(ctx context.Context) (Record, error) {
	for {
		rec, err := r.Next()
		if !errors.Is(err, io.EOF) {
			return rec, err
		}
		if err := r.Wait(ctx); err != nil {
			return Record{}, err
		}
	}
}

// Wait blocks until records past the reader's position may have become
// visible, ctx ends, or the spool is closed (ErrClosed).
func (r *Reader) Wait(ctx context.Context) error {
	s := r.s
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	ch := s.notify
	more := s.visibleEndLocked() > r.want
	s.mu.Unlock()
	if more {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// damaged gives up the rest of g after a bad record at the reader's
// position: counted lost, and the segment retired so nothing more is
// written after the damage.
func (r *Reader) damaged(g *segment, cause error) error {
	s := r.s
	s.appendMu.Lock() // no write in flight into g
	s.ackMu.Lock()
	s.mu.Lock()
	lost := 0
	var del bool
	if !g.deleted {
		for q := r.next; q < g.end(); q++ {
			if g.setDone(q) {
				lost++
			}
		}
		s.pending -= lost
		s.stats.LostRecords += uint64(lost)
		s.stats.LostBytes += g.size - r.off
		g.broken = true
		del = g.sealed && g.done == g.count && s.unlinkLocked(g)
	}
	err := &CorruptError{Segment: filepath.Base(g.path), Offset: r.off, Seq: r.next, Lost: lost, Err: cause}
	r.want = max(r.want, g.end())
	s.mu.Unlock()
	if del {
		_ = s.removeFiles(g)
	}
	s.ackMu.Unlock()
	s.appendMu.Unlock()
	r.drop()
	return err
}

func (s *Spool) isDeleted(g *segment) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return g.deleted
}

// segmentFromLocked returns the first segment holding a sequence ≥ seq,
// or the active one if it may yet.
func (s *Spool) segmentFromLocked(seq uint64) *segment {
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].end() > seq })
	if i < len(s.segs) {
		return s.segs[i]
	}
	return nil
}

func (s *Spool) segmentAfterLocked(g *segment) *segment {
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].first > g.first })
	if i < len(s.segs) {
		return s.segs[i]
	}
	return nil
}

// visibleEndLocked is the sequence number after the newest visible record.
func (s *Spool) visibleEndLocked() uint64 {
	a := s.active
	if a == nil {
		return 0
	}
	return a.first + uint64(a.visCount)
}
