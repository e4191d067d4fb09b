package spool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// crash abandons s the way a killed process does: the kernel closes its
// file descriptors (dropping the flock); nothing is synced, flushed,
// acknowledged or deleted on the way out. The spool keeps no user-space
// buffer, so the page cache holds exactly what a kill -9 would leave.
func (s *Spool) crash() {
	if s.stopFlush != nil {
		s.stopOnce.Do(func() {
			close(s.stopFlush)
			<-s.flushDone
		})
	}
	s.appendMu.Lock()
	s.ackMu.Lock()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	_ = s.closeFiles()
	s.ackMu.Unlock()
	s.appendMu.Unlock()
}

// payloadFor is record i's payload: its size varies from 1 to 2000 bytes
// and its bytes depend on i, so a misplaced record is noticed.
func payloadFor(i int) []byte {
	n := 1 + (i*7919)%2000
	b := make([]byte, n)
	for j := range b {
		b[j] = byte(i*31 + j + i>>8)
	}
	if n >= 4 {
		binary.LittleEndian.PutUint32(b, uint32(i))
	}
	return b
}

func openT(t testing.TB, opts Options) (*Spool, Recovery) {
	t.Helper()
	s, rec, err := Open(opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, rec
}

func appendT(t testing.TB, s *Spool, payload []byte) uint64 {
	t.Helper()
	seq, err := s.Append(payload)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return seq
}

// readAll reads every record r yields until io.EOF.
func readAll(t testing.TB, r *Reader) []Record {
	t.Helper()
	var out []Record
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("next after %d records: %v", len(out), err)
		}
		out = append(out, rec)
	}
}

func seqsOf(recs []Record) []uint64 {
	out := make([]uint64, len(recs))
	for i, r := range recs {
		out[i] = r.Seq
	}
	return out
}

// files lists the names in dir with the suffix, sorted.
func files(t testing.TB, dir, suffix string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), suffix) {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	return out
}

// checkPayloads checks that each record carries payloadFor(want[seq]).
func checkPayloads(t testing.TB, recs []Record, index map[uint64]int) {
	t.Helper()
	for _, r := range recs {
		i, ok := index[r.Seq]
		if !ok {
			t.Fatalf("record %d was never appended", r.Seq)
		}
		if !bytes.Equal(r.Payload, payloadFor(i)) {
			t.Fatalf("record %d: payload of %d bytes differs from record %d's", r.Seq, len(r.Payload), i)
		}
	}
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// frameOffsets returns the offset of every record in a segment file.
func frameOffsets(t testing.TB, path string) []int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	for off := int64(segHeaderSize); off+frameHeader <= int64(len(b)); {
		offs = append(offs, off)
		off += frameHeader + int64(binary.LittleEndian.Uint32(b[off:]))
	}
	return offs
}

func segPath(dir string, first uint64) string { return filepath.Join(dir, segName(first)) }
