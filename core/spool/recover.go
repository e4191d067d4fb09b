package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Recovery is what Open found in the directory.
type Recovery struct {
	// Segments is the number of segment files found.
	Segments int
	// Records are the unacknowledged records kept: readers replay them.
	Records int
	// Bytes is their payload size.
	Bytes int64
	// Acked records are still in segment files but acknowledged: not replayed.
	Acked int
	// LostRecords is the number of unacknowledged records discarded
	// because they were damaged or followed damage; LostBytes the number
	// of bytes cut from segment files. Losses details each cut.
	LostRecords int
	LostBytes   int64
	Losses      []Loss
	// CorruptSegments names the segments damaged otherwise than by a
	// crash tearing the newest one's last write: a sealed segment (fsynced
	// before the next began), a bad header, or intact records found after
	// the damage. Disk or tampering, worth an operator's look.
	CorruptSegments []string
	// NextSeq is the sequence number the next Append gets.
	NextSeq uint64
}

// Loss is one cut: the bytes of a segment from Offset on.
type Loss struct {
	Segment string // file name
	Offset  int64  // where the good prefix ends (0: whole file)
	Bytes   int64
	// Records is how many records started in the cut bytes: each intact
	// record found after the damage (their sequence numbers count the
	// ones before them) plus one for damage after the last intact one.
	Records int
	// Acked of those records had been acknowledged: not a loss for the sink.
	Acked int
	// FirstSeq..LastSeq are their sequence numbers (0 when Records is 0).
	FirstSeq, LastSeq uint64
	Reason            string
	// Torn is true for the expected crash case: the newest segment's
	// last write, cut short.
	Torn bool
}

// Clean reports whether nothing was lost.
func (r Recovery) Clean() bool { return len(r.Losses) == 0 }

// String summarises the recovery for a log line.
func (r Recovery) String() string {
	s := fmt.Sprintf("%d segments, %d records to replay (%d bytes), %d acked", r.Segments, r.Records, r.Bytes, r.Acked)
	if !r.Clean() {
		s += fmt.Sprintf("; LOST %d records, %d bytes cut", r.LostRecords, r.LostBytes)
		var why []string
		for _, l := range r.Losses {
			why = append(why, fmt.Sprintf("%s@%d: %s", l.Segment, l.Offset, l.Reason))
		}
		s += " (" + strings.Join(why, "; ") + ")"
	}
	return s
}

// recover loads the directory into s: scans every segment, cuts damage,
// loads acknowledgements, deletes what is fully acknowledged, and starts
// the active segment.
func (s *Spool) recover() (Recovery, error) {
	var rec Recovery
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return rec, fmt.Errorf("read directory: %w", err)
	}
	var firsts []uint64
	acks := map[uint64]bool{}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if first, ok := parseName(e.Name(), segSuffix); ok && first > 0 {
			firsts = append(firsts, first)
		} else if first, ok := parseName(e.Name(), ackSuffix); ok {
			acks[first] = true
		}
	}
	slices.Sort(firsts)
	rec.Segments = len(firsts)

	var nextSeq uint64 = 1
	var done []*segment // fully acknowledged: deleted once the active segment exists
	var last *segment   // reusable as the active segment
	for i, first := range firsts {
		newest := i == len(firsts)-1
		g, loss, err := s.loadSegment(first, newest)
		if err != nil {
			return rec, err
		}
		delete(acks, first)
		if loss != nil {
			rec.Losses = append(rec.Losses, *loss)
			rec.LostRecords += loss.Records - loss.Acked
			rec.LostBytes += loss.Bytes
			if !loss.Torn {
				rec.CorruptSegments = append(rec.CorruptSegments, loss.Segment)
			}
			if loss.Records > 0 {
				nextSeq = max(nextSeq, loss.LastSeq+1) // never reuse a number a reader may have seen
			}
		}
		nextSeq = max(nextSeq, first)
		if g == nil { // unreadable header: the file is gone
			continue
		}
		nextSeq = max(nextSeq, g.end(), g.maxAck+1)
		rec.Records += g.count - g.done
		rec.Bytes += g.pendingPayload
		rec.Acked += g.done
		s.pending += g.count - g.done
		if g.done == g.count {
			done = append(done, g)
		} else {
			s.segs = append(s.segs, g)
			s.disk += g.size
		}
		if newest && loss == nil && g.end() == nextSeq && g.size < s.opts.SegmentBytes {
			last = g
		}
	}
	// Ack files whose segment is gone: a crash between the two deletions.
	for first := range acks {
		if err := os.Remove(filepath.Join(s.dir, ackName(first))); err != nil && !errors.Is(err, os.ErrNotExist) {
			return rec, fmt.Errorf("remove orphan ack file: %w", err)
		}
	}

	// The active segment: the newest one if intact and not full, else a
	// new one. It exists before anything is deleted, so its name keeps the
	// sequence numbers going up across restarts.
	if last != nil {
		f, err := os.OpenFile(last.path, os.O_WRONLY, 0)
		if err != nil {
			return rec, fmt.Errorf("open %s: %w", last.path, err)
		}
		last.f = f
		last.sealed = false
		if last.done == last.count {
			done = slices.DeleteFunc(done, func(g *segment) bool { return g == last })
			s.segs = append(s.segs, last)
			s.disk += last.size
		}
		s.active = last
	} else {
		g, err := s.createSegment(nextSeq)
		if err != nil {
			return rec, err
		}
		s.segs = append(s.segs, g)
		s.disk += g.size
		s.active = g
	}
	s.nextSeq = nextSeq
	rec.NextSeq = nextSeq
	for _, g := range done {
		if g.ack != nil {
			_ = g.ack.Close()
			g.ack = nil
		}
		if err := s.removeFiles(g); err != nil {
			return rec, err
		}
	}
	s.stats.LostRecords = uint64(rec.LostRecords)
	s.stats.LostBytes = rec.LostBytes
	return rec, nil
}

// loadSegment scans one segment file, cuts its damage, and loads its
// acknowledgements. A nil segment means the file was unreadable and has
// been removed (with its ack file).
func (s *Spool) loadSegment(first uint64, newest bool) (*segment, *Loss, error) {
	path := filepath.Join(s.dir, segName(first))
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("stat %s: %w", path, err)
	}
	acked, maxAck, err := s.loadAcks(first)
	if err != nil {
		return nil, nil, err
	}
	// Payload of unacknowledged records, counted while scanning.
	var pendingPayload int64
	res := scanSegment(f, st.Size(), first, func(seq uint64, n int64) {
		if !acked[seq] {
			pendingPayload += n
		}
	})

	var loss *Loss
	if d := res.Damage; d != nil {
		loss = &Loss{Segment: filepath.Base(path), Offset: res.GoodEnd, Bytes: res.Size - res.GoodEnd, Records: d.Records, FirstSeq: d.FirstSeq, LastSeq: d.LastSeq, Reason: d.Reason}
		if d.Records == 0 {
			loss.FirstSeq = 0
		}
		for q := d.FirstSeq; d.Records > 0 && q <= d.LastSeq; q++ {
			if acked[q] {
				loss.Acked++
			}
		}
		// A crash cuts the newest segment's last write short; its header is
		// written and fsynced before any record, so a short header is a
		// crash during creation too.
		loss.Torn = newest && !d.Intact && (res.HeaderErr == nil || res.Size < segHeaderSize)
	}
	if res.HeaderErr != nil {
		_ = f.Close()
		if err := os.Remove(path); err != nil {
			return nil, nil, fmt.Errorf("remove unreadable %s: %w", path, err)
		}
		if err := os.Remove(filepath.Join(s.dir, ackName(first))); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, nil, fmt.Errorf("remove acks of %s: %w", path, err)
		}
		return nil, loss, nil
	}
	if loss != nil {
		if err := f.Truncate(res.GoodEnd); err != nil {
			return nil, nil, fmt.Errorf("cut damaged tail of %s: %w", path, err)
		}
		if !s.opts.Sync.None { // else a crash may show the damage again: reported twice, no harm
			if err := f.Sync(); err != nil {
				return nil, nil, fmt.Errorf("fsync %s: %w", path, err)
			}
		}
	}
	g := &segment{first: first, path: path, size: res.GoodEnd, count: res.Records, sealed: true, maxAck: maxAck, pendingPayload: pendingPayload}
	g.visible, g.visCount = g.size, g.count
	for q := range acked {
		if q >= first && q < g.end() {
			g.setDone(q)
		}
	}
	if g.done < g.count {
		// Keep the ack file open for appending: acks of the replay go there.
		af, err := os.OpenFile(filepath.Join(s.dir, ackName(first)), os.O_WRONLY|os.O_APPEND, 0)
		if err == nil {
			g.ack = af
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, nil, fmt.Errorf("open acks of %s: %w", path, err)
		}
	}
	return g, loss, nil
}

// loadAcks reads a segment's acknowledgement log. Entries with a bad
// checksum are skipped (their records are replayed again: at least once);
// a torn last entry is cut so new entries stay aligned.
func (s *Spool) loadAcks(first uint64) (map[uint64]bool, uint64, error) {
	path := filepath.Join(s.dir, ackName(first))
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", path, err)
	}
	acked := make(map[uint64]bool, len(b)/ackEntrySize)
	var maxAck uint64
	n := len(b) / ackEntrySize * ackEntrySize
	for i := 0; i < n; i += ackEntrySize {
		if seq, ok := decodeAck(b[i : i+ackEntrySize]); ok && seq >= first {
			acked[seq] = true
			maxAck = max(maxAck, seq)
		}
	}
	if n != len(b) {
		if err := os.Truncate(path, int64(n)); err != nil {
			return nil, 0, fmt.Errorf("cut torn entry of %s: %w", path, err)
		}
	}
	return acked, maxAck, nil
}
