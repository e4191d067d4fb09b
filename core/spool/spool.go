package spool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// Errors callers act on.
var (
	// ErrFull is returned by Append when the record would take the spool
	// over Options.MaxBytes. Nothing was written; acknowledging records
	// frees whole segments. The caller decides: block (AppendWait), or
	// drop and count.
	ErrFull = errors.New("spool full")
	// ErrTooLarge is returned for a record that could never fit, full or not.
	ErrTooLarge = errors.New("record larger than the spool allows")
	// ErrClosed is returned by every call after Close.
	ErrClosed = errors.New("spool closed")
	// ErrLocked is returned by Open when another Spool, in this process or
	// another, holds the directory.
	ErrLocked = errors.New("spool directory in use")
	// ErrUnknownSeq is returned by Ack for a sequence number the spool
	// never handed out.
	ErrUnknownSeq = errors.New("sequence number never appended")
)

// SyncPolicy says when appended records are made durable (fsync).
//
// A reader only sees a record once it is durable: a record a sink has
// acknowledged can therefore not vanish in a power loss and have its
// sequence number handed out again. The zero value is SyncEveryBatch.
type SyncPolicy struct {
	// Every is how many appended records share one fsync. 0 and 1 mean
	// every record: Append returns once its record is on disk.
	Every int
	// Interval bounds how long a record waits for its grouped fsync
	// (Every > 1): a background flush runs that often. Default 100ms.
	Interval time.Duration
	// None never calls fsync (the OS writes back when it likes): the
	// fastest, for data that may be lost with the machine (raw packets).
	// A kill -9 still loses nothing that Append accepted; a power loss may
	// lose the tail, which Open then reports.
	None bool
}

// SyncEveryBatch fsyncs each record before Append returns.
var SyncEveryBatch = SyncPolicy{Every: 1}

// SyncNone never fsyncs.
var SyncNone = SyncPolicy{None: true}

// SyncGrouped fsyncs once every n records, and at least every interval.
func SyncGrouped(n int, interval time.Duration) SyncPolicy {
	return SyncPolicy{Every: n, Interval: interval}
}

func (p SyncPolicy) every() bool   { return !p.None && p.Every <= 1 }
func (p SyncPolicy) grouped() bool { return !p.None && p.Every > 1 }

func (p SyncPolicy) String() string {
	switch {
	case p.None:
		return "none"
	case p.Every <= 1:
		return "every batch"
	}
	return fmt.Sprintf("every %d batches or %s", p.Every, p.Interval)
}

// Options configure a spool.
type Options struct {
	// Dir holds the segment files; it is created if missing. One spool
	// per directory (a lock file enforces it).
	Dir string
	// SegmentBytes is the size at which a segment is closed and a new one
	// started (default 64 MiB, at most MaxBytes). A larger record gets a
	// segment of its own.
	SegmentBytes int64
	// MaxBytes bounds the segment files' total size (default 1 GiB):
	// Append returns ErrFull rather than pass it. Acknowledgement files add
	// 12 bytes per acknowledged record on top, until their segment goes.
	MaxBytes int64
	// Sync is when records are fsynced (default SyncEveryBatch).
	Sync SyncPolicy
	// AckSync is when acknowledgements are fsynced (default: as Sync).
	// An acknowledgement is written to its log before Ack returns, so it
	// survives a crash of the process whatever this says; fsync only
	// matters for a power loss, which at worst replays records again.
	// SyncGrouped here halves the fsyncs of a busy sink.
	AckSync SyncPolicy
}

const (
	defaultSegmentBytes = 64 << 20
	defaultMaxBytes     = 1 << 30
	minSegmentBytes     = 4 << 10
)

// Record is one spooled record.
type Record struct {
	Seq     uint64
	Payload []byte
}

// Stats are a spool's counters.
type Stats struct {
	Dir      string `json:"dir"`
	Segments int    `json:"segments"`
	// PendingRecords are appended and not acknowledged.
	PendingRecords int `json:"pending_records"`
	// DiskBytes is the segment files' size: what MaxBytes bounds.
	DiskBytes int64  `json:"disk_bytes"`
	MaxBytes  int64  `json:"max_bytes"`
	NextSeq   uint64 `json:"next_seq"`
	// Since Open:
	Appended      uint64 `json:"appended"`
	AppendedBytes uint64 `json:"appended_bytes"`
	Acked         uint64 `json:"acked"`
	Full          uint64 `json:"full"` // appends refused with ErrFull
	Syncs         uint64 `json:"syncs"`
	// LostRecords and LostBytes count unacknowledged records found damaged:
	// at Open (Recovery) and by readers since.
	LostRecords uint64 `json:"lost_records"`
	LostBytes   int64  `json:"lost_bytes"`
}

// segment is one segment file and its acknowledgements.
type segment struct {
	first uint64
	path  string
	size  int64 // bytes written (header and records)
	count int   // records written
	// visible and visCount are the durable prefix that readers may read.
	visible  int64
	visCount int
	done     int      // records acknowledged (or lost)
	bits     []uint64 // bit i: record first+i acknowledged (or lost)
	sealed   bool     // no more records will be written
	deleted  bool
	broken   bool     // a write failed or it was found damaged: roll before the next append
	f        *os.File // write handle, active segment only
	ack      *os.File // acknowledgement log, opened on first ack
	ackDirty bool     // ack entries written since the last fsync

	maxAck         uint64 // at Open: the highest acknowledged sequence logged
	pendingPayload int64  // at Open: payload bytes not acknowledged
}

func (g *segment) isDone(seq uint64) bool {
	i := seq - g.first
	w := i / 64
	return w < uint64(len(g.bits)) && g.bits[w]&(1<<(i%64)) != 0
}

// setDone marks seq and reports whether it was not marked yet.
func (g *segment) setDone(seq uint64) bool {
	i := seq - g.first
	w := int(i / 64)
	for len(g.bits) <= w {
		g.bits = append(g.bits, 0)
	}
	if g.bits[w]&(1<<(i%64)) != 0 {
		return false
	}
	g.bits[w] |= 1 << (i % 64)
	g.done++
	return true
}

func (g *segment) end() uint64 { return g.first + uint64(g.count) }

// Spool is a disk queue of records with sequence numbers: Append writes,
// Readers read what is not acknowledged yet, Ack releases. Safe for
// concurrent use by any number of goroutines.
type Spool struct {
	opts Options
	dir  string
	lock *os.File

	// Lock order: appendMu, then ackMu, then mu.
	appendMu sync.Mutex // writes to the active segment, rolls
	ackMu    sync.Mutex // writes to ack files, segment deletion
	mu       sync.Mutex // everything below

	segs         []*segment // by first sequence; the last is the active one
	active       *segment
	nextSeq      uint64
	disk         int64
	pending      int
	unsynced     int // records appended since the last fsync
	unsyncedAcks int // acks logged since the last fsync of their logs
	closed       bool
	notify       chan struct{} // closed when records become visible, or on Close
	freed        chan struct{} // closed when a segment is deleted, or on Close
	stats        Stats
	scratch      []byte // frame buffer, under appendMu

	stopFlush chan struct{}
	flushDone chan struct{}
	stopOnce  sync.Once
}

// Open opens (creating it if needed) the spool in opts.Dir and recovers
// what a previous run left: every appended record not acknowledged is
// kept for replay, in order; a damaged or truncated tail is cut off and
// reported in Recovery, never dropped silently.
func Open(opts Options) (*Spool, Recovery, error) {
	if opts.Dir == "" {
		return nil, Recovery{}, errors.New("spool: no directory")
	}
	if opts.MaxBytes == 0 {
		opts.MaxBytes = defaultMaxBytes
	}
	if opts.SegmentBytes == 0 {
		opts.SegmentBytes = min(defaultSegmentBytes, opts.MaxBytes)
	}
	if opts.SegmentBytes < minSegmentBytes {
		return nil, Recovery{}, fmt.Errorf("spool: segment size %d is under the minimum %d", opts.SegmentBytes, minSegmentBytes)
	}
	if opts.MaxBytes < opts.SegmentBytes {
		return nil, Recovery{}, fmt.Errorf("spool: max size %d is smaller than the segment size %d", opts.MaxBytes, opts.SegmentBytes)
	}
	if opts.AckSync == (SyncPolicy{}) {
		opts.AckSync = opts.Sync
	}
	for _, p := range []*SyncPolicy{&opts.Sync, &opts.AckSync} {
		if p.Every < 0 || p.Interval < 0 {
			return nil, Recovery{}, fmt.Errorf("spool: bad sync policy %+v", *p)
		}
		if p.Every > 1 && p.Interval == 0 {
			p.Interval = 100 * time.Millisecond
		}
	}
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return nil, Recovery{}, fmt.Errorf("spool: create %s: %w", opts.Dir, err)
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, Recovery{}, fmt.Errorf("spool: %w", err)
	}
	opts.Dir = dir
	lock, err := lockDir(dir)
	if err != nil {
		return nil, Recovery{}, fmt.Errorf("spool: %w", err)
	}
	s := &Spool{opts: opts, dir: dir, lock: lock, notify: make(chan struct{}), freed: make(chan struct{})}
	s.stats.Dir, s.stats.MaxBytes = dir, opts.MaxBytes
	rec, err := s.recover()
	if err != nil {
		s.closeFiles()
		return nil, rec, fmt.Errorf("spool %s: %w", dir, err)
	}
	if opts.Sync.grouped() || opts.AckSync.grouped() {
		s.stopFlush, s.flushDone = make(chan struct{}), make(chan struct{})
		go s.flusher()
	}
	return s, rec, nil
}

// Dir returns the spool's directory.
func (s *Spool) Dir() string { return s.dir }

// Append writes payload as the next record and returns its sequence
// number. With SyncEveryBatch the record is on disk when Append returns.
// It returns ErrFull, writing nothing, when the record would take the
// spool over MaxBytes. The payload is copied; the caller may reuse it.
func (s *Spool) Append(payload []byte) (uint64, error) {
	return s.AppendLimit(payload, s.opts.MaxBytes)
}

// AppendLimit is Append with limit, instead of MaxBytes, as the size the
// record may not take the spool past. Below MaxBytes it is a high-water
// mark that keeps room for records that matter more; above it, it lets a
// record that must not be lost in although the spool is full. Space taken
// past MaxBytes counts: Append refuses until acknowledgements free it.
func (s *Spool) AppendLimit(payload []byte, limit int64) (uint64, error) {
	need := int64(frameHeader + len(payload))
	if bound := min(limit, s.opts.MaxBytes); len(payload) > MaxRecordBytes || segHeaderSize+need > bound {
		return 0, fmt.Errorf("%w: %d bytes (max size %d)", ErrTooLarge, len(payload), bound)
	}
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, ErrClosed
	}
	a := s.active
	roll := a.broken || (a.count > 0 && a.size+need > s.opts.SegmentBytes)
	reclaim := a.done == a.count // rolling deletes the active segment
	if !roll && reclaim && a.count > 0 && s.disk+need > limit {
		roll = true // make room: every record in the active segment is acked
	}
	after := s.disk + need // disk use once the record is written
	if roll {
		after += segHeaderSize
		if reclaim {
			after -= a.size
		}
	}
	if after > limit {
		s.stats.Full++
		s.mu.Unlock()
		return 0, ErrFull
	}
	s.mu.Unlock()
	if roll {
		if err := s.rollLocked(); err != nil {
			return 0, err
		}
	}
	s.mu.Lock()
	a = s.active
	seq := s.nextSeq
	s.mu.Unlock()

	if cap(s.scratch) < int(need) {
		s.scratch = make([]byte, need)
	}
	frame := s.scratch[:need]
	copy(frame[frameHeader:], payload)
	putFrameHeader(frame[:frameHeader], seq, frame[frameHeader:])
	old := a.size
	if _, err := a.f.WriteAt(frame, old); err != nil {
		s.undoLocked(a, old)
		return 0, fmt.Errorf("spool: write record %d: %w", seq, err)
	}
	every := s.opts.Sync.every()
	if every {
		if err := a.f.Sync(); err != nil {
			s.undoLocked(a, old)
			return 0, fmt.Errorf("spool: fsync record %d: %w", seq, err)
		}
	}

	s.mu.Lock()
	a.size += need
	a.count++
	s.nextSeq++
	s.disk += need
	s.pending++
	s.stats.Appended++
	s.stats.AppendedBytes += uint64(len(payload))
	if every {
		s.stats.Syncs++
	} else {
		s.unsynced++
	}
	if every || s.opts.Sync.None {
		s.showLocked(a) // durable, or durability not asked for
	}
	flush := s.opts.Sync.grouped() && s.unsynced >= s.opts.Sync.Every
	s.mu.Unlock()
	if flush {
		if err := s.syncLocked(); err != nil {
			return seq, fmt.Errorf("spool: record %d is spooled but its group fsync failed: %w", seq, err)
		}
	}
	return seq, nil
}

// AppendWait is Append that waits, while the spool is full, for
// acknowledgements to free space (or ctx to end): back-pressure.
func (s *Spool) AppendWait(ctx context.Context, payload []byte) (uint64, error) {
	return s.AppendWaitLimit(ctx, payload, s.opts.MaxBytes)
}

// AppendWaitLimit is AppendLimit that waits for room as AppendWait does.
func (s *Spool) AppendWaitLimit(ctx context.Context, payload []byte, limit int64) (uint64, error) {
	for {
		s.mu.Lock()
		freed := s.freed
		s.mu.Unlock()
		seq, err := s.AppendLimit(payload, limit)
		if !errors.Is(err, ErrFull) {
			return seq, err
		}
		select {
		case <-freed:
		case <-ctx.Done():
			return 0, fmt.Errorf("spool full: %w", ctx.Err())
		}
	}
}

// undoLocked cuts a failed write off the active segment so the next
// record does not follow garbage, and retires the segment. The failed
// record's sequence number is not handed out again: should the cut fail
// too, the bytes left behind cannot pass for another record. Under
// appendMu.
func (s *Spool) undoLocked(a *segment, size int64) {
	_ = a.f.Truncate(size)
	s.mu.Lock()
	a.broken = true
	s.nextSeq++
	s.mu.Unlock()
}

// showLocked makes everything written to g visible to readers. Under mu.
func (s *Spool) showLocked(g *segment) {
	if g.visible == g.size && g.visCount == g.count {
		return
	}
	g.visible, g.visCount = g.size, g.count
	close(s.notify)
	s.notify = make(chan struct{})
}

// Sync makes every appended record and every acknowledgement durable now
// and visible to readers, whatever the policy (with SyncNone it is the
// only fsync there is).
func (s *Spool) Sync() error {
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	return s.syncLocked()
}

// syncLocked fsyncs the active segment and the acknowledgement logs
// written since the last sync. Under appendMu.
func (s *Spool) syncLocked() error {
	s.mu.Lock()
	a := s.active
	n := s.unsynced
	s.mu.Unlock()
	var err error
	if n > 0 {
		if serr := a.f.Sync(); serr != nil {
			err = fmt.Errorf("fsync %s: %w", a.path, serr)
			s.mu.Lock()
			a.broken = true
			s.mu.Unlock()
		}
		s.mu.Lock()
		s.unsynced = 0
		s.stats.Syncs++
		// Visible even if fsync failed: the bytes are in the page cache
		// and readable, and the segment is retired at the next append.
		s.showLocked(a)
		s.mu.Unlock()
	}
	if aerr := s.syncAcks(); aerr != nil && err == nil {
		err = aerr
	}
	return err
}

func (s *Spool) syncAcks() error {
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	return s.syncAcksLocked()
}

// syncAcksLocked fsyncs the ack logs written since their last fsync.
// Under ackMu.
func (s *Spool) syncAcksLocked() error {
	s.mu.Lock()
	s.unsyncedAcks = 0
	var dirty []*segment
	for _, g := range s.segs {
		if g.ackDirty && g.ack != nil {
			dirty = append(dirty, g)
			g.ackDirty = false
		}
	}
	s.mu.Unlock()
	var err error
	for _, g := range dirty {
		if serr := g.ack.Sync(); serr != nil && err == nil {
			err = fmt.Errorf("fsync acks of %s: %w", filepath.Base(g.path), serr)
		}
	}
	return err
}

func (s *Spool) flusher() {
	defer close(s.flushDone)
	interval := s.opts.Sync.Interval
	if s.opts.AckSync.grouped() && (interval == 0 || s.opts.AckSync.Interval < interval) {
		interval = s.opts.AckSync.Interval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stopFlush:
			return
		case <-t.C:
			s.mu.Lock()
			records := s.opts.Sync.grouped() && s.unsynced > 0
			acks := s.opts.AckSync.grouped() && s.unsyncedAcks > 0
			s.mu.Unlock()
			// An error retires the segment; the next Append reports its own.
			if records {
				_ = s.Sync()
			} else if acks {
				_ = s.syncAcks()
			}
		}
	}
}

// rollLocked seals the active segment and starts a new one at nextSeq.
// Under appendMu.
func (s *Spool) rollLocked() error {
	s.mu.Lock()
	old := s.active
	first := s.nextSeq
	s.mu.Unlock()
	if !s.opts.Sync.None && !old.broken {
		if err := old.f.Sync(); err != nil {
			s.mu.Lock()
			old.broken = true
			s.mu.Unlock()
			return fmt.Errorf("spool: fsync %s: %w", old.path, err)
		}
	}
	g, err := s.createSegment(first)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	s.mu.Lock()
	old.sealed = true
	s.unsynced = 0
	s.showLocked(old)
	s.segs = append(s.segs, g)
	s.active = g
	s.disk += g.size
	del := old.done == old.count && s.unlinkLocked(old)
	s.mu.Unlock()
	_ = old.f.Close()
	old.f = nil
	if del {
		s.ackMu.Lock()
		err = s.removeFiles(old)
		s.ackMu.Unlock()
	}
	return err
}

// createSegment writes a new segment's header, durably.
func (s *Spool) createSegment(first uint64) (*segment, error) {
	path := filepath.Join(s.dir, segName(first))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	if _, err := f.Write(encodeSegHeader(first)); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	if !s.opts.Sync.None {
		if err := f.Sync(); err != nil {
			_ = f.Close()
			_ = os.Remove(path)
			return nil, fmt.Errorf("fsync %s: %w", path, err)
		}
		if err := syncDir(s.dir); err != nil {
			_ = f.Close()
			_ = os.Remove(path) // else the retry would find it there
			return nil, err
		}
	}
	return &segment{first: first, path: path, size: segHeaderSize, visible: segHeaderSize, f: f}, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// unlinkLocked takes a segment out of the spool (under mu) and reports
// whether this call did it; removeFiles then deletes its files.
func (s *Spool) unlinkLocked(g *segment) bool {
	if g.deleted || g == s.active {
		return false
	}
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].first >= g.first })
	if i == len(s.segs) || s.segs[i] != g {
		return false
	}
	s.segs = append(s.segs[:i], s.segs[i+1:]...)
	g.deleted = true
	s.disk -= g.size
	close(s.freed)
	s.freed = make(chan struct{})
	return true
}

// removeFiles deletes an unlinked segment's files, the segment first:
// a crash in between leaves an orphan ack file, which Open removes. Under
// ackMu.
func (s *Spool) removeFiles(g *segment) error {
	if g.ack != nil {
		_ = g.ack.Close()
		g.ack = nil
	}
	if err := os.Remove(g.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("spool: delete %s: %w", g.path, err)
	}
	if err := os.Remove(filepath.Join(s.dir, ackName(g.first))); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("spool: delete acks of %s: %w", g.path, err)
	}
	return nil
}

// findLocked returns the segment that holds seq, or nil.
func (s *Spool) findLocked(seq uint64) *segment {
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].first > seq })
	if i == 0 {
		return nil
	}
	g := s.segs[i-1]
	if seq >= g.end() {
		return nil
	}
	return g
}

// Ack records that the record seq has been delivered: it will not be
// replayed, now or after a restart (once the acknowledgement is durable:
// at once with SyncEveryBatch, at the next group fsync otherwise). Acks
// may come in any order and more than once. A segment file is deleted
// when every record in it is acknowledged.
func (s *Spool) Ack(seq uint64) error {
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	g := s.findLocked(seq)
	if g == nil {
		next := s.nextSeq
		s.mu.Unlock()
		if seq == 0 || seq >= next {
			return fmt.Errorf("%w: %d (next is %d)", ErrUnknownSeq, seq, next)
		}
		return nil // acknowledged before, its segment is gone (or it was lost)
	}
	if !g.setDone(seq) {
		s.mu.Unlock()
		return nil
	}
	s.pending--
	s.stats.Acked++
	del := g.sealed && g.done == g.count && s.unlinkLocked(g)
	s.mu.Unlock()
	if del {
		return s.removeFiles(g) // no need to log an ack for a file that is gone
	}
	if g.ack == nil {
		f, err := os.OpenFile(filepath.Join(s.dir, ackName(g.first)), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return fmt.Errorf("spool: open acks: %w", err)
		}
		g.ack = f
		if s.opts.AckSync.every() {
			if err := syncDir(s.dir); err != nil {
				return fmt.Errorf("spool: %w", err)
			}
		}
	}
	e := encodeAck(seq)
	if _, err := g.ack.Write(e[:]); err != nil {
		return fmt.Errorf("spool: log ack %d: %w", seq, err)
	}
	if s.opts.AckSync.every() {
		if err := g.ack.Sync(); err != nil {
			return fmt.Errorf("spool: fsync ack %d: %w", seq, err)
		}
		return nil
	}
	s.mu.Lock()
	g.ackDirty = true
	s.unsyncedAcks++
	flush := s.opts.AckSync.grouped() && s.unsyncedAcks >= s.opts.AckSync.Every
	s.mu.Unlock()
	if flush {
		return s.syncAcksLocked()
	}
	return nil
}

// Pending returns the number of records appended and not acknowledged,
// and the bytes the spool's segment files take on disk (what MaxBytes
// bounds; a segment's bytes are freed when its last record is acked).
func (s *Spool) Pending() (records int, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending, s.disk
}

// Stats returns the spool's counters.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Segments = len(s.segs)
	st.PendingRecords = s.pending
	st.DiskBytes = s.disk
	st.NextSeq = s.nextSeq
	return st
}

// Close makes everything durable, closes the files and releases the
// directory. Readers return ErrClosed afterwards.
func (s *Spool) Close() error {
	if s.stopFlush != nil {
		s.stopOnce.Do(func() {
			close(s.stopFlush)
			<-s.flushDone
		})
	}
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	var err error
	switch {
	case !s.opts.Sync.None:
		err = s.syncLocked()
	case !s.opts.AckSync.None:
		err = s.syncAcks()
	}
	s.ackMu.Lock()
	s.mu.Lock()
	s.closed = true
	close(s.notify)
	close(s.freed)
	s.mu.Unlock()
	s.ackMu.Unlock()
	return errors.Join(err, s.closeFiles())
}

// closeFiles closes every file the spool holds, the lock last.
func (s *Spool) closeFiles() error {
	var errs []error
	for _, g := range s.segs {
		if g.f != nil {
			errs = append(errs, g.f.Close())
			g.f = nil
		}
		if g.ack != nil {
			errs = append(errs, g.ack.Close())
			g.ack = nil
		}
	}
	if s.lock != nil {
		errs = append(errs, s.lock.Close())
		s.lock = nil
	}
	return errors.Join(errs...)
}
