package spool

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAppendReplayOrderAcrossSegments(t *testing.T) {
	dir := t.TempDir()
	s, rec := openT(t, Options{Dir: dir, SegmentBytes: 4 << 10})
	if !rec.Clean() || rec.Records != 0 || rec.NextSeq != 1 {
		t.Fatalf("fresh spool recovered %+v", rec)
	}
	const n = 500
	index := map[uint64]int{}
	var payload int64
	for i := range n {
		seq := appendT(t, s, payloadFor(i))
		if seq != uint64(i+1) {
			t.Fatalf("record %d got sequence %d", i, seq)
		}
		index[seq] = i
		payload += int64(len(payloadFor(i)))
	}
	segs := files(t, dir, segSuffix)
	if len(segs) < 50 {
		t.Fatalf("%d segments for ~500 KB in 4 KiB segments", len(segs))
	}
	for _, name := range segs {
		if sz := fileSize(t, filepath.Join(dir, name)); sz > 4<<10 {
			t.Fatalf("segment %s is %d bytes, over SegmentBytes", name, sz)
		}
	}
	if recs, bytes := s.Pending(); recs != n || bytes != sumSizes(t, dir) {
		t.Fatalf("pending %d records %d bytes; want %d records, %d bytes on disk", recs, bytes, n, sumSizes(t, dir))
	}

	got := readAll(t, s.Reader(0))
	if len(got) != n {
		t.Fatalf("read %d records, want %d", len(got), n)
	}
	for i, r := range got {
		if r.Seq != uint64(i+1) {
			t.Fatalf("record %d has sequence %d", i, r.Seq)
		}
	}
	checkPayloads(t, got, index)

	// From the middle: exactly the records from there on.
	mid := readAll(t, s.Reader(321))
	if len(mid) != n-320 || mid[0].Seq != 321 {
		t.Fatalf("reader from 321 read %d records starting at %v", len(mid), seqsOf(mid[:1]))
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, rec := openT(t, Options{Dir: dir, SegmentBytes: 4 << 10})
	if !rec.Clean() || rec.Records != n || rec.Bytes != payload || rec.Acked != 0 || rec.NextSeq != n+1 || rec.Segments != len(segs) {
		t.Fatalf("reopen recovered %+v; want %d records, %d bytes, %d segments", rec, n, payload, len(segs))
	}
	again := readAll(t, s2.Reader(0))
	if !slices.Equal(seqsOf(again), seqsOf(got)) {
		t.Fatalf("replay after reopen differs")
	}
	checkPayloads(t, again, index)
	if seq := appendT(t, s2, []byte("after")); seq != n+1 {
		t.Fatalf("first append after reopen got %d, want %d", seq, n+1)
	}
}

func sumSizes(t *testing.T, dir string) int64 {
	var total int64
	for _, name := range files(t, dir, segSuffix) {
		total += fileSize(t, filepath.Join(dir, name))
	}
	return total
}

func TestAckOutOfOrderDeletesOnlyFullyAckedSegments(t *testing.T) {
	dir := t.TempDir()
	s, _ := openT(t, Options{Dir: dir, SegmentBytes: 4 << 10})
	for i := range 60 {
		appendT(t, s, make([]byte, 1000+i)) // 3 or 4 records a segment
	}
	segs := files(t, dir, segSuffix)
	if len(segs) < 10 {
		t.Fatalf("%d segments", len(segs))
	}
	firsts := make([]uint64, len(segs))
	for i, name := range segs {
		firsts[i], _ = parseName(name, segSuffix)
	}
	// Segment 1 holds firsts[1]..firsts[2]-1. Ack it backwards, all but
	// its first record: it must stay.
	lo, hi := firsts[1], firsts[2]-1
	if hi <= lo {
		t.Fatalf("segment %s holds one record", segs[1])
	}
	for q := hi; q > lo; q-- {
		if err := s.Ack(q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(segPath(dir, lo)); err != nil {
		t.Fatalf("segment deleted with record %d unacknowledged: %v", lo, err)
	}
	if _, err := os.Stat(filepath.Join(dir, ackName(lo))); err != nil {
		t.Fatalf("ack log of a live segment missing: %v", err)
	}
	// Acks of a later segment, and a duplicate, change nothing for it.
	if err := s.Ack(firsts[3]); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(hi); err != nil {
		t.Fatalf("duplicate ack: %v", err)
	}
	if _, err := os.Stat(segPath(dir, lo)); err != nil {
		t.Fatalf("segment deleted early: %v", err)
	}
	recs, before := s.Pending()
	if want := 60 - int(hi-lo) - 1; recs != want {
		t.Fatalf("pending %d, want %d", recs, want)
	}
	// The last ack of the segment deletes it and its ack log.
	if err := s.Ack(lo); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(segPath(dir, lo)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("fully acknowledged segment still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, ackName(lo))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ack log of a deleted segment still there: %v", err)
	}
	if _, after := s.Pending(); after >= before {
		t.Fatalf("disk bytes %d → %d after a segment went", before, after)
	}
	if got := files(t, dir, segSuffix); len(got) != len(segs)-1 || got[0] != segs[0] || got[1] != segs[2] {
		t.Fatalf("segments after deleting %s: %v", segs[1], got)
	}

	// Ack everything in random order: every sealed segment goes, the
	// active one stays (it carries the sequence numbers on).
	rng := rand.New(rand.NewPCG(1, 2))
	order := rng.Perm(60)
	for _, i := range order {
		if err := s.Ack(uint64(i + 1)); err != nil {
			t.Fatal(err)
		}
	}
	if got := files(t, dir, segSuffix); len(got) != 1 || got[0] != segs[len(segs)-1] {
		t.Fatalf("after acking everything: %v, want only the active %s", got, segs[len(segs)-1])
	}
	if recs, _ := s.Pending(); recs != 0 {
		t.Fatalf("pending %d after acking everything", recs)
	}
	if got := readAll(t, s.Reader(0)); len(got) != 0 {
		t.Fatalf("acknowledged records read again: %v", seqsOf(got))
	}
	// The next append rolls away the fully acknowledged active segment once it is full.
	for range 5 {
		appendT(t, s, make([]byte, 1000))
	}
	if got := files(t, dir, segSuffix); slices.Contains(got, segs[len(segs)-1]) {
		t.Fatalf("acknowledged active segment not retired on roll: %v", got)
	}
}

func TestAckErrors(t *testing.T) {
	s, _ := openT(t, Options{Dir: t.TempDir()})
	seq := appendT(t, s, []byte("x"))
	for _, bad := range []uint64{0, seq + 1, 1 << 60} {
		if err := s.Ack(bad); !errors.Is(err, ErrUnknownSeq) {
			t.Fatalf("ack %d: %v, want ErrUnknownSeq", bad, err)
		}
	}
	if err := s.Ack(seq); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(seq); err != nil {
		t.Fatalf("second ack: %v", err)
	}
	if st := s.Stats(); st.Acked != 1 || st.PendingRecords != 0 {
		t.Fatalf("stats after a double ack: %+v", st)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(seq); !errors.Is(err, ErrClosed) {
		t.Fatalf("ack after close: %v", err)
	}
	if _, err := s.Append([]byte("y")); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if _, err := s.Reader(0).Next(); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

// restartCase appends n records, acknowledges a random subset, then
// stops the spool with stop and checks that Open replays exactly the
// unacknowledged records, in order.
func restartCase(t *testing.T, policy Options, stop func(*Spool)) {
	dir := t.TempDir()
	opts := Options{Dir: dir, SegmentBytes: 8 << 10, Sync: policy.Sync, AckSync: policy.AckSync}
	s, _, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	index := map[uint64]int{}
	acked := map[uint64]bool{}
	for i := range 400 {
		seq := appendT(t, s, payloadFor(i))
		index[seq] = i
		// Acks arrive late and out of order, as from a sink with a window.
		if i > 5 && rng.IntN(3) > 0 {
			q := seq - uint64(rng.IntN(5))
			if !acked[q] {
				if err := s.Ack(q); err != nil {
					t.Fatal(err)
				}
				acked[q] = true
			}
		}
	}
	var want []uint64
	for q := uint64(1); q <= 400; q++ {
		if !acked[q] {
			want = append(want, q)
		}
	}
	stop(s)

	s2, rec := openT(t, opts)
	if !rec.Clean() {
		t.Fatalf("losses after a clean stop: %+v", rec)
	}
	if rec.Records != len(want) || rec.Acked+len(want) > 400 || rec.NextSeq != 401 {
		t.Fatalf("recovered %+v; want %d records, next 401", rec, len(want))
	}
	got := readAll(t, s2.Reader(0))
	if !slices.Equal(seqsOf(got), want) {
		t.Fatalf("replayed %d records %v…, want the %d unacknowledged %v…", len(got), head(seqsOf(got)), len(want), head(want))
	}
	checkPayloads(t, got, index)
	// Acknowledge half the replay, restart again: the other half remains.
	for i, r := range got {
		if i%2 == 0 {
			if err := s2.Ack(r.Seq); err != nil {
				t.Fatal(err)
			}
		}
	}
	if seq := appendT(t, s2, payloadFor(400)); seq != 401 {
		t.Fatalf("append after restart got %d", seq)
	}
	index[401] = 400
	stop(s2)
	s3, rec := openT(t, opts)
	got3 := readAll(t, s3.Reader(0))
	var want3 []uint64
	for i, q := range want {
		if i%2 == 1 {
			want3 = append(want3, q)
		}
	}
	want3 = append(want3, 401)
	if !slices.Equal(seqsOf(got3), want3) || rec.Records != len(want3) {
		t.Fatalf("second restart replayed %v, want %v (recovery %+v)", head(seqsOf(got3)), head(want3), rec)
	}
	checkPayloads(t, got3, index)
}

func head(s []uint64) []uint64 { return s[:min(len(s), 12)] }

func TestRestartReplaysExactlyUnacked(t *testing.T) {
	restartCase(t, Options{}, func(s *Spool) {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestCrashReplaysExactlyUnacked abandons the spool without Close, as a
// kill -9 would, under each sync policy: nothing Append or Ack returned
// for is lost with the process (the page cache keeps unsynced writes).
func TestCrashReplaysExactlyUnacked(t *testing.T) {
	for name, p := range map[string]Options{
		"every":      {Sync: SyncEveryBatch},
		"grouped":    {Sync: SyncGrouped(50, time.Hour)},
		"none":       {Sync: SyncNone},
		"lazy acks":  {Sync: SyncEveryBatch, AckSync: SyncGrouped(1000, time.Hour)},
		"fsync acks": {Sync: SyncNone, AckSync: SyncEveryBatch},
	} {
		t.Run(name, func(t *testing.T) {
			restartCase(t, p, (*Spool).crash)
		})
	}
}

func TestSecondOpenFailsWhileLive(t *testing.T) {
	dir := t.TempDir()
	s, _ := openT(t, Options{Dir: dir})
	appendT(t, s, []byte("x"))
	_, _, err := Open(Options{Dir: dir})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
	for _, want := range []string{filepath.Join(dir, lockName), "locked", "pid"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not mention %q", err, want)
		}
	}
	// The failed Open must not have disturbed the live spool.
	if seq := appendT(t, s, []byte("y")); seq != 2 {
		t.Fatalf("append after a refused open got %d", seq)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, rec := openT(t, Options{Dir: dir})
	if rec.Records != 2 {
		t.Fatalf("after close, open recovered %+v", rec)
	}
	_ = s2
}

func TestSequenceNumbersSurviveFullAck(t *testing.T) {
	dir := t.TempDir()
	s, _, err := Open(Options{Dir: dir, SegmentBytes: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		appendT(t, s, payloadFor(i))
	}
	for q := uint64(1); q <= 30; q++ {
		if err := s.Ack(q); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for round := range 3 { // reopen with nothing appended, repeatedly
		s, rec := openT(t, Options{Dir: dir, SegmentBytes: 4 << 10})
		if rec.NextSeq != 31 || rec.Records != 0 {
			t.Fatalf("round %d: recovered %+v, want next 31", round, rec)
		}
		if n := len(files(t, dir, segSuffix)); n != 1 {
			t.Fatalf("round %d: %d segment files, want the one active", round, n)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	s, _ = openT(t, Options{Dir: dir, SegmentBytes: 4 << 10})
	if seq := appendT(t, s, []byte("x")); seq != 31 {
		t.Fatalf("sequence after full ack and restarts: %d, want 31", seq)
	}
}

func TestOrphanAckFileRemoved(t *testing.T) {
	dir := t.TempDir()
	orphan := filepath.Join(dir, ackName(5))
	if err := os.WriteFile(orphan, make([]byte, 24), 0o600); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(dir, "README")
	if err := os.WriteFile(foreign, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	openT(t, Options{Dir: dir})
	if _, err := os.Stat(orphan); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("orphan ack log kept: %v", err)
	}
	if _, err := os.Stat(foreign); err != nil {
		t.Fatalf("a file the spool does not own was touched: %v", err)
	}
}

func TestFullThenAckFreesSpace(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Dir: dir, SegmentBytes: 4 << 10, MaxBytes: 16 << 10}
	s, _ := openT(t, opts)
	rec := make([]byte, 1000)
	var seqs []uint64
	for {
		seq, err := s.Append(rec)
		if errors.Is(err, ErrFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
		if len(seqs) > 100 {
			t.Fatal("never full")
		}
	}
	disk := sumSizes(t, dir)
	if disk > opts.MaxBytes || disk < opts.MaxBytes-2*(frameHeader+1000)-segHeaderSize {
		t.Fatalf("full at %d bytes on disk, bound %d", disk, opts.MaxBytes)
	}
	if _, b := s.Pending(); b != disk {
		t.Fatalf("Pending says %d bytes, files hold %d", b, disk)
	}
	if st := s.Stats(); st.Full != 1 || st.Appended != uint64(len(seqs)) {
		t.Fatalf("stats %+v", st)
	}
	if _, err := s.Append(make([]byte, 17<<10)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("record over MaxBytes: %v", err)
	}
	// Acking part of the first segment frees nothing; all of it does.
	if err := s.Ack(seqs[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(rec); !errors.Is(err, ErrFull) {
		t.Fatalf("append with a partly acked segment: %v", err)
	}
	second, _ := parseName(files(t, dir, segSuffix)[1], segSuffix)
	for q := seqs[0] + 1; q < second; q++ {
		if err := s.Ack(q); err != nil {
			t.Fatal(err)
		}
	}
	seq, err := s.Append(rec)
	if err != nil {
		t.Fatalf("append after freeing a segment: %v", err)
	}
	if seq != seqs[len(seqs)-1]+1 {
		t.Fatalf("sequence after ErrFull: %d", seq)
	}
	if d := sumSizes(t, dir); d > opts.MaxBytes {
		t.Fatalf("%d bytes on disk, over %d", d, opts.MaxBytes)
	}
}

func TestAppendWaitBlocksUntilAcked(t *testing.T) {
	dir := t.TempDir()
	s, _ := openT(t, Options{Dir: dir, SegmentBytes: 4 << 10, MaxBytes: 8 << 10})
	var seqs []uint64
	for {
		seq, err := s.Append(make([]byte, 1000))
		if errors.Is(err, ErrFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
	}
	full := s.Stats().Full
	type result struct {
		seq uint64
		err error
	}
	done := make(chan result, 1)
	go func() {
		seq, err := s.AppendWait(context.Background(), []byte("waited"))
		done <- result{seq, err}
	}()
	// Wait until AppendWait has been refused at least once: it is blocked.
	for s.Stats().Full == full {
		time.Sleep(time.Millisecond)
	}
	select {
	case r := <-done:
		t.Fatalf("AppendWait returned %+v while the spool was full", r)
	default:
	}
	for _, q := range seqs {
		if err := s.Ack(q); err != nil {
			t.Fatal(err)
		}
	}
	r := <-done
	if r.err != nil || r.seq != seqs[len(seqs)-1]+1 {
		t.Fatalf("AppendWait after acks: %+v", r)
	}
	got := readAll(t, s.Reader(0))
	if len(got) != 1 || string(got[0].Payload) != "waited" {
		t.Fatalf("read %d records after the wait", len(got))
	}

	// A cancelled wait returns the context's error.
	for {
		if _, err := s.Append(make([]byte, 1000)); errors.Is(err, ErrFull) {
			break
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.AppendWait(ctx, make([]byte, 1000)); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled AppendWait: %v", err)
	}
}

func TestFullActiveSegmentAckedIsReclaimed(t *testing.T) {
	// One big segment fills the spool; once all of it is acknowledged the
	// next Append retires it rather than report ErrFull.
	s, _ := openT(t, Options{Dir: t.TempDir(), SegmentBytes: 8 << 10, MaxBytes: 8 << 10})
	var last uint64
	for {
		seq, err := s.Append(make([]byte, 1000))
		if errors.Is(err, ErrFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		last = seq
	}
	for q := uint64(1); q <= last; q++ {
		if err := s.Ack(q); err != nil {
			t.Fatal(err)
		}
	}
	if seq, err := s.Append(make([]byte, 1000)); err != nil || seq != last+1 {
		t.Fatalf("append after acking the whole spool: %d, %v", seq, err)
	}
	if st := s.Stats(); st.Segments != 1 || st.DiskBytes != segHeaderSize+frameHeader+1000 {
		t.Fatalf("after reclaiming: %+v", st)
	}
}

// TestConcurrentAppendReadAck runs an appender, and a reader that
// acknowledges in shuffled groups, at the same time (run with -race).
func TestConcurrentAppendReadAck(t *testing.T) {
	dir := t.TempDir()
	s, _ := openT(t, Options{Dir: dir, SegmentBytes: 16 << 10, Sync: SyncGrouped(16, time.Millisecond)})
	const n = 3000
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	appendErr := make(chan error, 1)
	go func() {
		defer wg.Done()
		for i := range n {
			if _, err := s.AppendWait(ctx, payloadFor(i)); err != nil {
				appendErr <- err
				return
			}
		}
		appendErr <- s.Sync() // the last group
	}()
	r := s.Reader(0)
	defer r.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	var window []uint64
	index := map[uint64]int{}
	for i := range n {
		index[uint64(i+1)] = i
	}
	var got []Record
	for len(got) < n {
		rec, err := r.NextWait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, rec)
		window = append(window, rec.Seq)
		if len(window) == 8 || len(got) == n {
			rng.Shuffle(len(window), func(i, j int) { window[i], window[j] = window[j], window[i] })
			for _, q := range window {
				if err := s.Ack(q); err != nil {
					t.Fatal(err)
				}
			}
			window = window[:0]
		}
	}
	wg.Wait()
	if err := <-appendErr; err != nil {
		t.Fatal(err)
	}
	for i, r := range got {
		if r.Seq != uint64(i+1) {
			t.Fatalf("record %d has sequence %d", i, r.Seq)
		}
	}
	checkPayloads(t, got, index)
	if st := s.Stats(); st.PendingRecords != 0 || st.Segments != 1 || st.Acked != n {
		t.Fatalf("after everything was acked: %+v", st)
	}
	if segs := files(t, dir, segSuffix); len(segs) != 1 {
		t.Fatalf("segment files left: %v", segs)
	}
}

func TestGroupedSyncVisibility(t *testing.T) {
	s, _ := openT(t, Options{Dir: t.TempDir(), Sync: SyncGrouped(1000, time.Hour)})
	r := s.Reader(0)
	appendT(t, s, []byte("a"))
	// Not fsynced yet, so not visible: a sink must not acknowledge what a
	// power loss could take back.
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("unsynced record readable: %v", err)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	rec, err := r.Next()
	if err != nil || string(rec.Payload) != "a" {
		t.Fatalf("after Sync: %q, %v", rec.Payload, err)
	}

	// The background flush makes records visible without a Sync call.
	s2, _ := openT(t, Options{Dir: t.TempDir(), Sync: SyncGrouped(1000, 5*time.Millisecond)})
	appendT(t, s2, []byte("b"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rec, err = s2.Reader(0).NextWait(ctx)
	if err != nil || string(rec.Payload) != "b" {
		t.Fatalf("grouped flush: %q, %v", rec.Payload, err)
	}
	if st := s2.Stats(); st.Syncs == 0 {
		t.Fatalf("no fsync counted: %+v", st)
	}
}

func TestReaderWaitAndClose(t *testing.T) {
	s, _, err := Open(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	r := s.Reader(0)
	got := make(chan Record, 1)
	errs := make(chan error, 2)
	go func() {
		rec, err := r.NextWait(context.Background())
		if err != nil {
			errs <- err
			return
		}
		got <- rec
		_, err = r.NextWait(context.Background()) // blocks until Close
		errs <- err
	}()
	seq := appendT(t, s, []byte("tail"))
	rec := <-got
	if rec.Seq != seq || string(rec.Payload) != "tail" {
		t.Fatalf("tailing reader got %+v", rec)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errs; !errors.Is(err, ErrClosed) {
		t.Fatalf("blocked reader after Close: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s2, _ := openT(t, Options{Dir: t.TempDir()})
	if err := s2.Reader(0).Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait with a cancelled context: %v", err)
	}
}

func TestReaderSeekReplaysUnacked(t *testing.T) {
	s, _ := openT(t, Options{Dir: t.TempDir(), SegmentBytes: 4 << 10})
	for i := range 40 {
		appendT(t, s, payloadFor(i))
	}
	r := s.Reader(0)
	first := readAll(t, r)
	for _, rec := range first[:25] {
		if rec.Seq%2 == 0 {
			if err := s.Ack(rec.Seq); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A sink reconnected: Seek(0) re-reads what it has not acknowledged.
	r.Seek(0)
	again := readAll(t, r)
	var want []uint64
	for q := uint64(1); q <= 40; q++ {
		if q > 25 || q%2 == 1 {
			want = append(want, q)
		}
	}
	if !slices.Equal(seqsOf(again), want) {
		t.Fatalf("after Seek(0): %v, want %v", seqsOf(again), want)
	}
}
