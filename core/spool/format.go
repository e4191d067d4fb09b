package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// On-disk layout; doc.go describes it for people.
const (
	segMagic      = "NGSPOOL\x00"
	segVersion    = 1
	segHeaderSize = 32
	frameHeader   = 16 // length u32, crc32c u32, seq u64
	ackEntrySize  = 12 // seq u64, crc32c u32

	segSuffix = ".seg"
	ackSuffix = ".ack"
	lockName  = "LOCK"
)

// MaxRecordBytes is the largest payload one record may carry.
const MaxRecordBytes = 1 << 30

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func segName(first uint64) string { return fmt.Sprintf("%020d%s", first, segSuffix) }
func ackName(first uint64) string { return fmt.Sprintf("%020d%s", first, ackSuffix) }

// parseName returns the first sequence number a segment or ack file name
// carries, and false for any other file.
func parseName(name, suffix string) (uint64, bool) {
	if len(name) != 20+len(suffix) || name[20:] != suffix {
		return 0, false
	}
	var n uint64
	for _, c := range name[:20] {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

func encodeSegHeader(first uint64) []byte {
	h := make([]byte, segHeaderSize)
	copy(h, segMagic)
	binary.LittleEndian.PutUint32(h[8:], segVersion)
	// h[12:16] flags, h[24:28] reserved: zero in version 1.
	binary.LittleEndian.PutUint64(h[16:], first)
	binary.LittleEndian.PutUint32(h[28:], crc32.Checksum(h[:28], castagnoli))
	return h
}

// decodeSegHeader checks a segment header and returns its first sequence.
func decodeSegHeader(h []byte) (uint64, error) {
	if len(h) < segHeaderSize {
		return 0, fmt.Errorf("segment header is %d bytes, want %d", len(h), segHeaderSize)
	}
	if string(h[:8]) != segMagic {
		return 0, errors.New("not a spool segment (bad magic)")
	}
	if crc32.Checksum(h[:28], castagnoli) != binary.LittleEndian.Uint32(h[28:]) {
		return 0, errors.New("segment header checksum mismatch")
	}
	if v := binary.LittleEndian.Uint32(h[8:]); v != segVersion {
		return 0, fmt.Errorf("segment format version %d, this build reads %d", v, segVersion)
	}
	return binary.LittleEndian.Uint64(h[16:]), nil
}

// frameCRC is the checksum of a record: its length, its sequence number
// and its payload (everything in the frame but the checksum itself).
func frameCRC(hdr []byte, payload []byte) uint32 {
	c := crc32.Update(0, castagnoli, hdr[0:4])
	c = crc32.Update(c, castagnoli, hdr[8:16])
	return crc32.Update(c, castagnoli, payload)
}

// putFrameHeader fills hdr (16 bytes) for payload with sequence seq.
func putFrameHeader(hdr []byte, seq uint64, payload []byte) {
	binary.LittleEndian.PutUint32(hdr[0:], uint32(len(payload)))
	binary.LittleEndian.PutUint64(hdr[8:], seq)
	binary.LittleEndian.PutUint32(hdr[4:], frameCRC(hdr, payload))
}

func encodeAck(seq uint64) [ackEntrySize]byte {
	var e [ackEntrySize]byte
	binary.LittleEndian.PutUint64(e[:], seq)
	binary.LittleEndian.PutUint32(e[8:], crc32.Checksum(e[:8], castagnoli))
	return e
}

func decodeAck(e []byte) (uint64, bool) {
	if crc32.Checksum(e[:8], castagnoli) != binary.LittleEndian.Uint32(e[8:12]) {
		return 0, false
	}
	return binary.LittleEndian.Uint64(e[:8]), true
}

// scanResult is what scanSegment found in one segment file.
type scanResult struct {
	First     uint64 // first sequence number (from the header, else the name)
	HeaderErr error  // the header is unusable: the whole file is discarded
	Records   int    // good records, sequences First..First+Records-1
	Payload   int64  // their payload bytes
	GoodEnd   int64  // offset just past the last good record
	Size      int64  // file size
	// Damage is set when bytes follow GoodEnd.
	Damage *damage
}

// damage describes the discarded bytes after a segment's good prefix.
type damage struct {
	Reason string
	// Records is the number of records that started in the discarded
	// bytes: every intact one found by resynchronising (their sequence
	// numbers tell how many came before them) plus one for damage after
	// the last intact one.
	Records int
	// FirstSeq and LastSeq bound the sequence numbers of those records.
	FirstSeq, LastSeq uint64
	// Intact is true when intact records were found after the damage: the
	// file was damaged in place (media, tampering), not torn by a crash.
	Intact bool
}

// segmentScanner reads frames from a segment through a read-ahead buffer.
type segmentScanner struct {
	r    io.ReaderAt
	size int64
	buf  []byte
	bOff int64 // file offset of buf[0]
	bLen int
}

// readAhead is the most a scanner reads at once.
const readAhead = 256 << 10

func newScanner(r io.ReaderAt, size int64) *segmentScanner {
	return &segmentScanner{r: r, size: size}
}

// at returns n bytes at off (n ≤ len(buf) unless it reads directly), or
// io.ErrUnexpectedEOF when the file ends first.
func (s *segmentScanner) at(off int64, n int) ([]byte, error) {
	if off < 0 || n < 0 || off+int64(n) > s.size {
		return nil, io.ErrUnexpectedEOF
	}
	if off >= s.bOff && off+int64(n) <= s.bOff+int64(s.bLen) {
		i := int(off - s.bOff)
		return s.buf[i : i+n], nil
	}
	if n > readAhead {
		b := make([]byte, n)
		if _, err := s.r.ReadAt(b, off); err != nil {
			return nil, err
		}
		return b, nil
	}
	if want := min(readAhead, s.size-off); int64(len(s.buf)) < want {
		s.buf = make([]byte, max(want, int64(min(2*len(s.buf), readAhead))))
	}
	m := int(min(int64(len(s.buf)), s.size-off))
	k, err := s.r.ReadAt(s.buf[:m], off)
	if k < m && err != nil {
		s.bLen = 0
		return nil, err
	}
	s.bOff, s.bLen = off, m
	return s.buf[:n], nil
}

// frameAt checks the frame at off. It returns the sequence number, the
// payload length and nil when the frame is intact; want, when non-zero, is
// the sequence number the frame must carry.
func (s *segmentScanner) frameAt(off int64, want uint64) (seq uint64, n int64, err error) {
	seq, n, _, err = s.frame(off, want)
	return seq, n, err
}

// frame is frameAt that also returns the payload, valid until the next
// read through s.
func (s *segmentScanner) frame(off int64, want uint64) (seq uint64, n int64, payload []byte, err error) {
	hdr, err := s.at(off, frameHeader)
	if err != nil {
		return 0, 0, nil, errTorn("record header")
	}
	length := int64(binary.LittleEndian.Uint32(hdr[0:]))
	sum := binary.LittleEndian.Uint32(hdr[4:])
	seq = binary.LittleEndian.Uint64(hdr[8:])
	var h [frameHeader]byte
	copy(h[:], hdr)
	if length > MaxRecordBytes || off+frameHeader+length > s.size {
		return seq, length, nil, errTorn("record")
	}
	payload, err = s.at(off+frameHeader, int(length))
	if err != nil {
		return seq, length, nil, fmt.Errorf("read record: %w", err)
	}
	if frameCRC(h[:], payload) != sum {
		return seq, length, nil, errCRC
	}
	if want != 0 && seq != want {
		return seq, length, nil, fmt.Errorf("record carries sequence %d where %d was expected", seq, want)
	}
	return seq, length, payload, nil
}

type tornError string

func (e tornError) Error() string { return "truncated " + string(e) }

func errTorn(what string) error { return tornError(what) }

var errCRC = errors.New("record checksum mismatch")

// scanSegment validates a segment: its header, then every record in order
// (checksum, and sequence numbers that follow the header's first one
// without a gap). It stops at the first bad record and describes what
// follows it. nameFirst (≥ 1) is the first sequence number the file name
// gives; onRecord, if not nil, is called for each good record. It reads
// only; it never panics on arbitrary bytes.
func scanSegment(r io.ReaderAt, size int64, nameFirst uint64, onRecord func(seq uint64, n int64)) scanResult {
	nameFirst = max(nameFirst, 1)
	res := scanResult{First: nameFirst, Size: size}
	s := newScanner(r, size)
	hdr, err := s.at(0, segHeaderSize)
	if err != nil {
		res.HeaderErr = fmt.Errorf("segment header is %d bytes, want %d", size, segHeaderSize)
	} else if first, err := decodeSegHeader(hdr); err != nil {
		res.HeaderErr = err
	} else if first != nameFirst {
		res.HeaderErr = fmt.Errorf("segment header says it starts at sequence %d, its name says %d", first, nameFirst)
	} else {
		res.First = first
	}
	if res.HeaderErr != nil {
		if size > 0 {
			res.Damage = s.describeDamage(0, res.First-1, res.HeaderErr.Error())
		}
		return res
	}
	off := int64(segHeaderSize)
	next := res.First
	for off < size {
		_, n, err := s.frameAt(off, next)
		if err != nil {
			res.Damage = s.describeDamage(off, next-1, err.Error())
			break
		}
		if onRecord != nil {
			onRecord(next, n)
		}
		res.Records++
		res.Payload += n
		off += frameHeader + n
		next++
		if next == 0 { // sequence space exhausted: nothing more can be valid
			break
		}
	}
	res.GoodEnd = off
	if res.Damage == nil && off < size {
		res.Damage = s.describeDamage(off, next-1, "records past the end of the sequence space")
	}
	return res
}

// describeDamage resynchronises after the bad bytes at off, lastGood
// being the sequence number of the last good record, to count what is
// discarded.
func (s *segmentScanner) describeDamage(off int64, lastGood uint64, reason string) *damage {
	d := &damage{Reason: reason, FirstSeq: lastGood + 1}
	highest := lastGood
	trailing := false
	p := off
	for p < s.size {
		if seq, n, err := s.frameAt(p, 0); err == nil && seq > highest && plausible(seq, highest, p-off) {
			highest = seq
			trailing = false
			d.Intact = true
			p += frameHeader + n
			continue
		}
		trailing = true
		q, ok := s.findFrame(p+1, highest, off)
		if !ok {
			break
		}
		p = q
	}
	d.Records = int(min(highest-lastGood, 1<<31))
	if trailing {
		d.Records++
	}
	d.LastSeq = lastGood + uint64(d.Records)
	if d.Records == 0 {
		d.LastSeq = 0
	}
	return d
}

// plausible bounds a resynchronised sequence number: between the last
// one seen and a record every 16 bytes since the damage began.
func plausible(seq, highest uint64, span int64) bool {
	return seq-highest <= uint64(span/frameHeader)+1
}

// findFrame looks for the next intact frame at or after from.
func (s *segmentScanner) findFrame(from int64, highest uint64, damageStart int64) (int64, bool) {
	for p := from; p+frameHeader <= s.size; p++ {
		hdr, err := s.at(p, frameHeader)
		if err != nil {
			return 0, false
		}
		seq := binary.LittleEndian.Uint64(hdr[8:])
		length := int64(binary.LittleEndian.Uint32(hdr[0:]))
		if seq <= highest || !plausible(seq, highest, p-damageStart) || p+frameHeader+length > s.size {
			continue
		}
		if got, _, err := s.frameAt(p, 0); err == nil && got == seq {
			return p, true
		}
	}
	return 0, false
}

// skipFrame reads only a frame's header, for a record the reader skips
// (acknowledged already): its sequence number must be want and its
// length inside the file. The checksum is not verified.
func (s *segmentScanner) skipFrame(off int64, want uint64) (seq uint64, n int64, err error) {
	hdr, err := s.at(off, frameHeader)
	if err != nil {
		return 0, 0, errTorn("record header")
	}
	n = int64(binary.LittleEndian.Uint32(hdr[0:]))
	seq = binary.LittleEndian.Uint64(hdr[8:])
	if n > MaxRecordBytes || off+frameHeader+n > s.size {
		return seq, n, errTorn("record")
	}
	if seq != want {
		return seq, n, fmt.Errorf("record carries sequence %d where %d was expected", seq, want)
	}
	return seq, n, nil
}
