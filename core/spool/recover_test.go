package spool

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// oneSegment writes records payloadFor(0..n-1) (sequences 1..n) into one
// segment, acknowledges acked, closes, and returns the segment's path and
// its record offsets.
func oneSegment(t *testing.T, n int, acked ...uint64) (dir, path string, offs []int64) {
	t.Helper()
	dir = t.TempDir()
	s, _, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		appendT(t, s, payloadFor(i))
	}
	for _, q := range acked {
		if err := s.Ack(q); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	path = segPath(dir, 1)
	offs = frameOffsets(t, path)
	if len(offs) != n {
		t.Fatalf("%d frames in %s, want %d", len(offs), path, n)
	}
	return dir, path, offs
}

func flip(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x5a
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func payloadBytes(from, to int) int64 {
	var n int64
	for i := from; i < to; i++ {
		n += int64(len(payloadFor(i)))
	}
	return n
}

// checkReplay opens dir and checks the replay is exactly want.
func checkReplay(t *testing.T, dir string, want []uint64) (*Spool, Recovery) {
	t.Helper()
	s, rec := openT(t, Options{Dir: dir})
	got := readAll(t, s.Reader(0))
	if !slices.Equal(seqsOf(got), want) {
		t.Fatalf("replayed %v, want %v", seqsOf(got), want)
	}
	index := map[uint64]int{}
	for _, q := range want {
		index[q] = int(q - 1)
	}
	checkPayloads(t, got, index)
	return s, rec
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for q := from; q <= to; q++ {
		out = append(out, q)
	}
	return out
}

func TestRecoverTruncatedTail(t *testing.T) {
	for _, tc := range []struct {
		name string
		cut  func(offs []int64) int64 // new file size
	}{
		{"mid payload", func(offs []int64) int64 { return offs[9] + frameHeader + int64(len(payloadFor(9)))/2 }},
		{"mid header", func(offs []int64) int64 { return offs[9] + 5 }},
		{"payload one byte short", func(offs []int64) int64 { return offs[9] + frameHeader + int64(len(payloadFor(9))) - 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, path, offs := oneSegment(t, 10)
			size := tc.cut(offs)
			if err := os.Truncate(path, size); err != nil {
				t.Fatal(err)
			}
			s, rec := checkReplay(t, dir, seqRange(1, 9))
			want := Loss{Segment: filepath.Base(path), Offset: offs[9], Bytes: size - offs[9], Records: 1, FirstSeq: 10, LastSeq: 10, Torn: true}
			if len(rec.Losses) != 1 {
				t.Fatalf("losses %+v", rec.Losses)
			}
			got := rec.Losses[0]
			got.Reason = ""
			if got != want {
				t.Fatalf("loss %+v, want %+v", got, want)
			}
			if rec.LostRecords != 1 || rec.LostBytes != size-offs[9] || len(rec.CorruptSegments) != 0 || rec.Records != 9 || rec.Bytes != payloadBytes(0, 9) {
				t.Fatalf("recovery %+v", rec)
			}
			if st := s.Stats(); st.LostRecords != 1 || st.LostBytes != size-offs[9] {
				t.Fatalf("stats do not carry the loss: %+v", st)
			}
			if sz := fileSize(t, path); sz != offs[9] {
				t.Fatalf("segment is %d bytes after recovery, want the good prefix %d", sz, offs[9])
			}
			// Sequence 10 is never handed out again.
			if rec.NextSeq != 11 {
				t.Fatalf("next sequence %d, want 11", rec.NextSeq)
			}
			if seq := appendT(t, s, []byte("new")); seq != 11 {
				t.Fatalf("append after a cut tail got %d", seq)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			// The loss is reported once: the next Open is clean.
			s2, rec2 := openT(t, Options{Dir: dir})
			if !rec2.Clean() || rec2.Records != 10 {
				t.Fatalf("second open: %+v", rec2)
			}
			_ = s2
		})
	}
}

func TestRecoverFlippedBytes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		where func(offs []int64) int64
	}{
		{"payload", func(offs []int64) int64 { return offs[5] + frameHeader + 2 }},
		{"length", func(offs []int64) int64 { return offs[5] + 1 }},
		{"checksum", func(offs []int64) int64 { return offs[5] + 4 }},
		{"sequence", func(offs []int64) int64 { return offs[5] + 8 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Records 7 and 8 were acknowledged: cutting them loses nothing.
			dir, path, offs := oneSegment(t, 10, 7, 8)
			size := fileSize(t, path)
			flip(t, path, tc.where(offs))
			_, rec := checkReplay(t, dir, seqRange(1, 5))
			want := Loss{Segment: filepath.Base(path), Offset: offs[5], Bytes: size - offs[5], Records: 5, Acked: 2, FirstSeq: 6, LastSeq: 10}
			if len(rec.Losses) != 1 {
				t.Fatalf("losses %+v", rec.Losses)
			}
			got := rec.Losses[0]
			if got.Reason == "" {
				t.Fatal("loss without a reason")
			}
			got.Reason = ""
			if got != want {
				t.Fatalf("loss %+v, want %+v", got, want)
			}
			// Intact records after the damage: corruption, not a torn write.
			if rec.LostRecords != 3 || rec.LostBytes != size-offs[5] || !slices.Equal(rec.CorruptSegments, []string{filepath.Base(path)}) || rec.NextSeq != 11 {
				t.Fatalf("recovery %+v", rec)
			}
		})
	}
}

func TestRecoverZeroFilledTail(t *testing.T) {
	// After a power loss a file system may show a tail of zeros.
	dir, path, _ := oneSegment(t, 4)
	size := fileSize(t, path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	_, rec := checkReplay(t, dir, seqRange(1, 4))
	if len(rec.Losses) != 1 || rec.Losses[0].Offset != size || rec.Losses[0].Bytes != 100 || rec.Losses[0].Records != 1 || !rec.Losses[0].Torn || rec.NextSeq != 6 {
		t.Fatalf("recovery %+v", rec)
	}
}

func TestRecoverTailAckedBeforeCut(t *testing.T) {
	// Record 10 was acknowledged (SyncNone lets a reader see it at once),
	// then a power loss cut it: no loss for the sink, and 10 is not reused.
	dir, path, offs := oneSegment(t, 10, 10)
	if err := os.Truncate(path, offs[9]+3); err != nil {
		t.Fatal(err)
	}
	_, rec := checkReplay(t, dir, seqRange(1, 9))
	if len(rec.Losses) != 1 || rec.Losses[0].Records != 1 || rec.Losses[0].Acked != 1 || rec.LostRecords != 0 || rec.NextSeq != 11 {
		t.Fatalf("recovery %+v", rec)
	}
}

// manySegments writes n records in 4 KiB segments and closes.
func manySegments(t *testing.T, n int) (string, []uint64) {
	t.Helper()
	dir := t.TempDir()
	s, _, err := Open(Options{Dir: dir, SegmentBytes: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		appendT(t, s, payloadFor(i))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var firsts []uint64
	for _, name := range files(t, dir, segSuffix) {
		q, _ := parseName(name, segSuffix)
		firsts = append(firsts, q)
	}
	return dir, firsts
}

func TestRecoverDamagedSealedSegment(t *testing.T) {
	dir, firsts := manySegments(t, 80)
	if len(firsts) < 6 {
		t.Fatalf("%d segments", len(firsts))
	}
	// Damage the second record of a sealed segment holding at least three.
	k := 1
	for k < len(firsts)-2 && firsts[k+1]-firsts[k] < 3 {
		k++
	}
	lo, hi := firsts[k], firsts[k+1]-1
	if hi-lo < 2 {
		t.Fatalf("no sealed segment holds three records: %v", firsts)
	}
	path := segPath(dir, lo)
	offs := frameOffsets(t, path)
	size := fileSize(t, path)
	flip(t, path, offs[1]+frameHeader)
	var want []uint64
	for q := uint64(1); q <= 80; q++ {
		if q <= lo || q > hi {
			want = append(want, q)
		}
	}
	_, rec := checkReplay(t, dir, want)
	if len(rec.Losses) != 1 {
		t.Fatalf("losses %+v", rec.Losses)
	}
	l := rec.Losses[0]
	if l.Segment != filepath.Base(path) || l.Offset != offs[1] || l.Bytes != size-offs[1] || l.Records != int(hi-lo) || l.FirstSeq != lo+1 || l.LastSeq != hi || l.Torn {
		t.Fatalf("loss %+v; want records %d..%d from offset %d", l, lo+1, hi, offs[1])
	}
	if !slices.Equal(rec.CorruptSegments, []string{filepath.Base(path)}) || rec.NextSeq != 81 || rec.Records != len(want) {
		t.Fatalf("recovery %+v", rec)
	}
}

func TestRecoverBadHeader(t *testing.T) {
	dir, firsts := manySegments(t, 60)
	lo, hi := firsts[1], firsts[2]-1
	path := segPath(dir, lo)
	size := fileSize(t, path)
	flip(t, path, 3) // the magic
	var want []uint64
	for q := uint64(1); q <= 60; q++ {
		if q < lo || q > hi {
			want = append(want, q)
		}
	}
	_, rec := checkReplay(t, dir, want)
	if len(rec.Losses) != 1 {
		t.Fatalf("losses %+v", rec.Losses)
	}
	l := rec.Losses[0]
	if l.Offset != 0 || l.Bytes != size || l.Records != int(hi-lo+1) || l.FirstSeq != lo || l.LastSeq != hi || l.Torn {
		t.Fatalf("loss %+v; want the whole file, records %d..%d", l, lo, hi)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("unreadable segment kept: %v", err)
	}
	if !slices.Equal(rec.CorruptSegments, []string{filepath.Base(path)}) {
		t.Fatalf("corrupt segments %v", rec.CorruptSegments)
	}
}

func TestRecoverNewestSegmentTornHeader(t *testing.T) {
	// A crash while creating a segment leaves a short header: a torn
	// write, nothing lost, the previous segments intact.
	dir, firsts := manySegments(t, 30)
	next := firsts[len(firsts)-1] + 100
	if err := os.WriteFile(segPath(dir, next), []byte(segMagic[:5]), 0o600); err != nil {
		t.Fatal(err)
	}
	_, rec := checkReplay(t, dir, seqRange(1, 30))
	if len(rec.Losses) != 1 || !rec.Losses[0].Torn || rec.Losses[0].Bytes != 5 || len(rec.CorruptSegments) != 0 || rec.NextSeq < next {
		t.Fatalf("recovery %+v", rec)
	}
}

func TestRecoverAckLogDamage(t *testing.T) {
	dir, _, _ := oneSegment(t, 6, 2, 4, 5)
	ack := filepath.Join(dir, ackName(1))
	if sz := fileSize(t, ack); sz != 3*ackEntrySize {
		t.Fatalf("ack log is %d bytes, want 3 entries", sz)
	}
	// A torn fourth entry, and a damaged second one (the ack of 4).
	f, err := os.OpenFile(ack, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte{6, 0, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	flip(t, ack, ackEntrySize+9)
	// 4 is replayed again (at least once); 2 and 5 stay acknowledged.
	s, rec := checkReplay(t, dir, []uint64{1, 3, 4, 6})
	if !rec.Clean() || rec.Acked != 2 {
		t.Fatalf("recovery %+v", rec)
	}
	if sz := fileSize(t, ack); sz != 3*ackEntrySize {
		t.Fatalf("torn ack entry not cut: %d bytes", sz)
	}
	// New acks land aligned after the cut.
	if err := s.Ack(6); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkReplay(t, dir, []uint64{1, 3, 4})
}

func TestReaderMeetsDamageAfterOpen(t *testing.T) {
	dir, firsts := manySegments(t, 60)
	s, rec := openT(t, Options{Dir: dir, SegmentBytes: 4 << 10})
	if !rec.Clean() {
		t.Fatalf("recovery %+v", rec)
	}
	lo, hi := firsts[1], firsts[2]-1
	path := segPath(dir, lo)
	offs := frameOffsets(t, path)
	flip(t, path, offs[1]+frameHeader+1) // record lo+1, under the open spool

	r := s.Reader(0)
	var got []uint64
	var cerr *CorruptError
	for {
		rec, err := r.Next()
		if errors.As(err, &cerr) {
			continue
		}
		if err != nil {
			break
		}
		got = append(got, rec.Seq)
	}
	if cerr == nil || cerr.Seq != lo+1 || cerr.Lost != int(hi-lo) || cerr.Offset != offs[1] {
		t.Fatalf("corrupt error %+v; want record %d, %d lost", cerr, lo+1, hi-lo)
	}
	var want []uint64
	for q := uint64(1); q <= 60; q++ {
		if q <= lo || q > hi {
			want = append(want, q)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("read %v, want %v", got, want)
	}
	if st := s.Stats(); st.LostRecords != uint64(hi-lo) || st.PendingRecords != len(want) {
		t.Fatalf("stats %+v", st)
	}
	// The damaged segment goes once its readable records are acknowledged.
	for q := firsts[1]; q <= lo; q++ {
		if err := s.Ack(q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("damaged, fully handled segment kept: %v", err)
	}
}
