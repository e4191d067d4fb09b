package spool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// realSegments returns segment files written by the spool itself, whole
// and damaged the ways recovery expects: the fuzzer's starting points.
func realSegments(tb testing.TB) [][]byte {
	tb.Helper()
	var out [][]byte
	for _, sizes := range [][]int{{5}, {0, 1, 300, 0, 70}, {4000, 20, 20, 20}} {
		dir := tb.TempDir()
		s, _, err := Open(Options{Dir: dir, Sync: SyncNone})
		if err != nil {
			tb.Fatal(err)
		}
		for i, n := range sizes {
			p := make([]byte, n)
			for j := range p {
				p[j] = byte(i + j)
			}
			if _, err := s.Append(p); err != nil {
				tb.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			tb.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, segName(1)))
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
		out = append(out, b[:len(b)-3]) // torn
		flipped := bytes.Clone(b)
		flipped[segHeaderSize+frameHeader/2] ^= 1 // damaged first record
		out = append(out, flipped)
		out = append(out, b[:segHeaderSize])
		out = append(out, append(bytes.Clone(b), make([]byte, 40)...)) // zero tail
	}
	return out
}

// FuzzSegmentReader feeds arbitrary bytes to the segment scanner and, as
// a segment file, to Open and a Reader: no panic, and the invariants
// recovery relies on hold.
func FuzzSegmentReader(f *testing.F) {
	for _, b := range realSegments(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		first := uint64(1)
		if len(data) >= 24 {
			if h := binary.LittleEndian.Uint64(data[16:]); h > 0 && h < 1<<62 {
				first = h // let mutations reach the records
			}
		}
		var seqs []uint64
		var payload int64
		res := scanSegment(bytes.NewReader(data), int64(len(data)), first, func(seq uint64, n int64) {
			seqs = append(seqs, seq)
			payload += n
		})
		size := int64(len(data))
		if res.Size != size || res.GoodEnd > size || len(seqs) != res.Records || payload != res.Payload {
			t.Fatalf("inconsistent scan: %+v (%d callbacks)", res, len(seqs))
		}
		for i, q := range seqs {
			if q != first+uint64(i) {
				t.Fatalf("record %d has sequence %d, first is %d", i, q, first)
			}
		}
		if res.HeaderErr != nil {
			if res.Records != 0 || (size > 0) != (res.Damage != nil) {
				t.Fatalf("bad header but %+v", res)
			}
		} else {
			if res.GoodEnd < segHeaderSize || (res.GoodEnd < size) != (res.Damage != nil) {
				t.Fatalf("good prefix %d of %d, damage %+v", res.GoodEnd, size, res.Damage)
			}
			// Cutting at the good prefix leaves a clean segment.
			again := scanSegment(bytes.NewReader(data[:res.GoodEnd]), res.GoodEnd, first, nil)
			if again.Damage != nil || again.Records != res.Records {
				t.Fatalf("rescan of the good prefix: %+v", again)
			}
		}
		if d := res.Damage; d != nil && d.Records > 0 && d.LastSeq-d.FirstSeq+1 != uint64(d.Records) {
			t.Fatalf("damage %+v", d)
		}
		// A Reader walks the good prefix skipping records (headers only)
		// and reading them: both agree with the scan.
		if res.HeaderErr == nil {
			sc := newScanner(bytes.NewReader(data), res.GoodEnd)
			off := int64(segHeaderSize)
			for i := range res.Records {
				q, n, err := sc.skipFrame(off, first+uint64(i))
				q2, n2, p, err2 := sc.frame(off, first+uint64(i))
				if err != nil || err2 != nil || q != q2 || n != n2 || int64(len(p)) != n {
					t.Fatalf("record %d at %d: skip %d,%d,%v read %d,%d,%v", i, off, q, n, err, q2, n2, err2)
				}
				off += frameHeader + n
			}
			if off != res.GoodEnd {
				t.Fatalf("records end at %d, scan said %d", off, res.GoodEnd)
			}
			if _, _, err := sc.skipFrame(off, first+uint64(res.Records)); err == nil {
				t.Fatal("a frame past the good prefix")
			}
		}
	})
}

// FuzzOpen writes arbitrary bytes as a segment file and opens the spool
// on it: recovery and the Reader never panic, and agree with the scanner.
// Slower than FuzzSegmentReader (file system calls per input).
func FuzzOpen(f *testing.F) {
	for _, b := range realSegments(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		first := uint64(1)
		if len(data) >= 24 {
			if h := binary.LittleEndian.Uint64(data[16:]); h > 0 && h < 1<<62 {
				first = h
			}
		}
		res := scanSegment(bytes.NewReader(data), int64(len(data)), first, nil)
		size := int64(len(data))
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segName(first)), data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, rec, err := Open(Options{Dir: dir, Sync: SyncNone})
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		defer s.Close()
		wantLost := size - res.GoodEnd
		if res.HeaderErr != nil {
			wantLost = size
		}
		if rec.Records != res.Records || rec.LostBytes != wantLost || rec.Bytes != res.Payload {
			t.Fatalf("recovery %+v for scan %+v", rec, res)
		}
		r := s.Reader(0)
		n := 0
		for {
			got, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if got.Seq != first+uint64(n) {
				t.Fatalf("read sequence %d, want %d", got.Seq, first+uint64(n))
			}
			n++
		}
		if n != res.Records {
			t.Fatalf("read %d records, scan found %d", n, res.Records)
		}
		if seq, err := s.Append([]byte("after")); err != nil || seq < first+uint64(res.Records) {
			t.Fatalf("append after recovery: %d, %v", seq, err)
		}
	})
}
