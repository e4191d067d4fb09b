package spool

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
)

// TestOnDiskFormat builds the bytes doc.go describes by hand and checks
// the spool writes exactly those: the format is a contract with files
// already on disks, not an accident of the code.
func TestOnDiskFormat(t *testing.T) {
	dir := t.TempDir()
	s, _, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	payloads := [][]byte{[]byte("hello"), {}, bytes.Repeat([]byte{0xab}, 300)}
	for _, p := range payloads {
		appendT(t, s, p)
	}
	if err := s.Ack(2); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	tab := crc32.MakeTable(crc32.Castagnoli)
	le := binary.LittleEndian

	var want []byte
	want = append(want, "NGSPOOL\x00"...)
	want = le.AppendUint32(want, 1) // version
	want = le.AppendUint32(want, 0) // flags
	want = le.AppendUint64(want, 1) // first sequence
	want = le.AppendUint32(want, 0) // reserved
	want = le.AppendUint32(want, crc32.Checksum(want[:28], tab))
	for i, p := range payloads {
		var lenSeq []byte
		lenSeq = le.AppendUint32(lenSeq, uint32(len(p)))
		lenSeq = le.AppendUint64(lenSeq, uint64(i+1))
		sum := crc32.Checksum(append(lenSeq, p...), tab)
		want = le.AppendUint32(want, uint32(len(p)))
		want = le.AppendUint32(want, sum)
		want = le.AppendUint64(want, uint64(i+1))
		want = append(want, p...)
	}
	got, err := os.ReadFile(filepath.Join(dir, "00000000000000000001.seg"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("segment bytes differ from the documented format:\n got %x\nwant %x", got, want)
	}
	ack, err := os.ReadFile(filepath.Join(dir, "00000000000000000001.ack"))
	if err != nil {
		t.Fatal(err)
	}
	wantAck := le.AppendUint64(nil, 2)
	wantAck = le.AppendUint32(wantAck, crc32.Checksum(wantAck, tab))
	if !bytes.Equal(ack, wantAck) {
		t.Fatalf("ack log %x, want %x", ack, wantAck)
	}
	if lock, err := os.ReadFile(filepath.Join(dir, "LOCK")); err != nil || len(lock) == 0 {
		t.Fatalf("lock file: %q, %v", lock, err)
	}
}

func TestParseName(t *testing.T) {
	for name, want := range map[string]uint64{
		"00000000000000000001.seg": 1,
		"18446744073709551615.seg": 1<<64 - 1,
		"00000000000000001234.seg": 1234,
	} {
		if got, ok := parseName(name, segSuffix); !ok || got != want {
			t.Errorf("%s: %d, %v", name, got, ok)
		}
	}
	for _, bad := range []string{"18446744073709551616.seg", "0000000000000000001.seg", "0000000000000000000x.seg", "00000000000000000001.ack", "00000000000000000001.seg.tmp", "LOCK"} {
		if _, ok := parseName(bad, segSuffix); ok {
			t.Errorf("%s parsed as a segment name", bad)
		}
	}
}
