// Package pcapfile reads pcap and pcapng captures record by record without
// allocating, and knows the byte offset of every record, so that a bad file
// is reported as "offset N: record M: what is wrong".
//
// It is used instead of gopacket's pcapgo readers because those buffer the
// input internally (so a counting reader below them cannot tell where a
// record starts) and size their packet buffer from the file's own length
// fields (a garbage length of 4 GB means a 4 GB allocation).
//
// Limits: a record's captured length may exceed the file's snaplen (some
// writers get it wrong) but not max(snaplen, 262144) nor MaxRecord; a
// pcapng block may not exceed MaxRecord.
package pcapfile

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
)

// MaxRecord is the largest captured length or pcapng block accepted.
const MaxRecord = 64 << 20

// DefaultMaxSnaplen is libpcap's largest snaplen for most link types;
// records up to it are accepted whatever the file header says.
const DefaultMaxSnaplen = 262144

// BufferSize is the read buffer: records up to this size are returned
// straight from it, without a copy.
const BufferSize = 1 << 20

// ErrTruncated is wrapped by the error returned when the input ends inside
// a record (a file cut short, or still being written).
var ErrTruncated = errors.New("file ends inside a record")

// Error is a problem at a known place in the input.
type Error struct {
	Offset int64  // byte offset of the record or block (in the uncompressed stream)
	Record uint64 // 1-based number of the record being read (0: file header)
	Err    error
}

func (e *Error) Error() string {
	if e.Record == 0 {
		return fmt.Sprintf("offset %d: file header: %v", e.Offset, e.Err)
	}
	return fmt.Sprintf("offset %d: record %d: %v", e.Offset, e.Record, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Format is the container format of a capture.
type Format int

const (
	FormatPcap Format = iota + 1
	FormatPcapNG
)

func (f Format) String() string {
	switch f {
	case FormatPcap:
		return "pcap"
	case FormatPcapNG:
		return "pcapng"
	}
	return "unknown"
}

// Record is one packet as read from the file. Data is only valid until the
// next call to Next.
type Record struct {
	Data      []byte
	Timestamp int64 // ns since the epoch
	Length    int   // original (wire) length
	LinkType  uint32
}

type iface struct {
	linkType uint32
	snaplen  uint32
	// timestamp conversion: ns = ts*mul/div when exact, else generic.
	units    uint64 // ticks per second
	offsetNS int64  // if_tsoffset
}

// Reader reads one capture.
type Reader struct {
	br     *bufio.Reader
	format Format
	off    int64  // bytes consumed
	rec    uint64 // records returned
	buf    []byte // for records larger than the read buffer

	// pcap
	order    binary.ByteOrder
	nsFactor int64
	snaplen  uint32
	limit    uint32
	link     uint32

	// pcapng
	ifaces []iface
}

// NewReader reads the file header (pcap) or the first section header
// (pcapng) from r, which it buffers itself (BufferSize).
func NewReader(r io.Reader) (*Reader, error) {
	rd := &Reader{br: bufio.NewReaderSize(r, BufferSize)}
	magic, err := rd.br.Peek(4)
	if err != nil {
		if err == io.EOF && len(magic) == 0 {
			return nil, &Error{Err: errors.New("empty file")}
		}
		return nil, &Error{Err: fmt.Errorf("file too short for a capture header (%d bytes)", len(magic))}
	}
	switch {
	case binary.LittleEndian.Uint32(magic) == 0x0a0d0d0a:
		rd.format = FormatPcapNG
		if err := rd.ngFirstSection(); err != nil {
			return nil, err
		}
	default:
		rd.format = FormatPcap
		if err := rd.pcapHeader(); err != nil {
			return nil, err
		}
	}
	return rd, nil
}

// Format returns the file's format.
func (r *Reader) Format() Format { return r.format }

// Offset returns the number of bytes consumed: the offset of the next record.
func (r *Reader) Offset() int64 { return r.off }

// Records returns the number of records returned so far.
func (r *Reader) Records() uint64 { return r.rec }

// LinkType returns the link type of the file (pcap) or of its first
// interface (pcapng; 0 before the first interface block).
func (r *Reader) LinkType() uint32 {
	if r.format == FormatPcapNG {
		if len(r.ifaces) == 0 {
			return 0
		}
		return r.ifaces[0].linkType
	}
	return r.link
}

func (r *Reader) errf(off int64, format string, args ...any) error {
	return &Error{Offset: off, Record: r.rec + 1, Err: fmt.Errorf(format, args...)}
}

// truncated reports input that ends after have of the need bytes of a record.
func (r *Reader) truncated(off int64, what string, need, have int) error {
	return &Error{Offset: off, Record: r.rec + 1, Err: fmt.Errorf("%w: %s needs %d bytes, only %d left", ErrTruncated, what, need, have)}
}

// peek returns the next n bytes without consuming them. n must be at most
// BufferSize. On short input it returns what there is and the read error.
func (r *Reader) peek(n int) ([]byte, error) {
	b, err := r.br.Peek(n)
	if err == io.EOF && len(b) > 0 {
		err = io.ErrUnexpectedEOF
	}
	return b, err
}

func (r *Reader) discard(n int) {
	d, _ := r.br.Discard(n)
	r.off += int64(d)
}

// readData returns the next n bytes and consumes them: straight from the
// buffer when they fit, else copied into r.buf.
func (r *Reader) readData(n int) ([]byte, int, error) {
	if n <= BufferSize {
		b, err := r.br.Peek(n)
		if err != nil {
			return nil, len(b), err
		}
		r.br.Discard(n)
		r.off += int64(n)
		return b, n, nil
	}
	if cap(r.buf) < n {
		r.buf = make([]byte, n)
	}
	b := r.buf[:n]
	got, err := io.ReadFull(r.br, b)
	r.off += int64(got)
	return b, got, err
}

// ---- pcap ------------------------------------------------------------------

func (r *Reader) pcapHeader() error {
	h, err := r.peek(24)
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return &Error{Err: fmt.Errorf("not a pcap or pcapng file: %d bytes, too short for a pcap header", len(h))}
		}
		return &Error{Err: err}
	}
	switch m := binary.LittleEndian.Uint32(h); m {
	case 0xa1b2c3d4:
		r.order, r.nsFactor = binary.LittleEndian, 1000
	case 0xd4c3b2a1:
		r.order, r.nsFactor = binary.BigEndian, 1000
	case 0xa1b23c4d:
		r.order, r.nsFactor = binary.LittleEndian, 1
	case 0x4d3cb2a1:
		r.order, r.nsFactor = binary.BigEndian, 1
	case 0xa1b2cd34, 0x34cdb2a1:
		return &Error{Err: errors.New("modified (Kuznetzov) pcap format is not supported; convert it with editcap -F pcap")}
	default:
		if h[0] == 0x1f && h[1] == 0x8b {
			return &Error{Err: errors.New("gzip-compressed data inside a gzip stream (compressed twice?)")}
		}
		return &Error{Err: fmt.Errorf("not a pcap or pcapng file: magic number %08x", m)}
	}
	if v := r.order.Uint16(h[4:6]); v != 2 {
		return &Error{Err: fmt.Errorf("unsupported pcap version %d.%d", v, r.order.Uint16(h[6:8]))}
	}
	r.snaplen = r.order.Uint32(h[16:20])
	r.link = r.order.Uint32(h[20:24]) & 0xffff // upper bits: FCS information
	r.limit = max(r.snaplen, DefaultMaxSnaplen)
	r.limit = min(r.limit, MaxRecord)
	r.discard(24)
	return nil
}

// Next returns the next record, io.EOF at the clean end of the input, or
// an *Error (wrapping ErrTruncated when the input ends inside a record).
func (r *Reader) Next(rec *Record) error {
	if r.format == FormatPcapNG {
		return r.ngNext(rec)
	}
	start := r.off
	h, err := r.peek(16)
	if err != nil {
		if err == io.EOF {
			return io.EOF
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return r.truncated(start, "record header", 16, len(h))
		}
		return r.errf(start, "%w", err)
	}
	sec, frac := r.order.Uint32(h[0:4]), r.order.Uint32(h[4:8])
	caplen, wire := r.order.Uint32(h[8:12]), r.order.Uint32(h[12:16])
	if caplen > r.limit {
		return r.errf(start, "captured length %d exceeds the limit %d (file snaplen %d)", caplen, r.limit, r.snaplen)
	}
	if int64(frac)*r.nsFactor >= 1e9 {
		return r.errf(start, "timestamp fraction %d out of range", frac)
	}
	var data []byte
	var got int
	if n := 16 + int(caplen); n <= BufferSize {
		// Header and data in one go, straight from the buffer.
		b, perr := r.br.Peek(n)
		if perr == nil {
			r.br.Discard(n)
			r.off += int64(n)
			data = b[16:]
		} else {
			r.discard(16)
			got, err = len(b)-16, perr
		}
	} else {
		r.discard(16)
		data, got, err = r.readData(int(caplen))
	}
	if err != nil {
		if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
			return r.truncated(start, "packet data", int(caplen), got)
		}
		return r.errf(start, "%w", err)
	}
	r.rec++
	rec.Data = data
	rec.Timestamp = int64(sec)*1e9 + int64(frac)*r.nsFactor
	rec.Length = int(max(wire, caplen))
	rec.LinkType = r.link
	return nil
}

// ---- pcapng ----------------------------------------------------------------

const (
	ngSHB = 0x0a0d0d0a
	ngIDB = 1
	ngPB  = 2 // obsolete packet block
	ngSPB = 3
	ngISB = 5
	ngEPB = 6
)

// ngBlock reads a whole block (header, body, trailer) into the buffer and
// returns its type and body; the block is consumed. Blocks of other types
// larger than the buffer are skipped without reading them.
func (r *Reader) ngBlock() (typ uint32, body []byte, start int64, err error) {
	start = r.off
	h, err := r.peek(12)
	if err != nil {
		if err == io.EOF {
			return 0, nil, start, io.EOF
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, nil, start, r.truncated(start, "block header", 12, len(h))
		}
		return 0, nil, start, r.errf(start, "%w", err)
	}
	if binary.LittleEndian.Uint32(h) == ngSHB {
		switch binary.LittleEndian.Uint32(h[8:12]) {
		case 0x1a2b3c4d:
			r.order = binary.LittleEndian
		case 0x4d3c2b1a:
			r.order = binary.BigEndian
		default:
			return 0, nil, start, r.errf(start, "section header with bad byte-order magic %x", h[8:12])
		}
		r.ifaces = r.ifaces[:0]
	}
	typ = r.order.Uint32(h[0:4])
	n := r.order.Uint32(h[4:8])
	if n < 12 || n%4 != 0 || n > MaxRecord {
		return 0, nil, start, r.errf(start, "block type %#x has invalid length %d", typ, n)
	}
	if n > BufferSize {
		switch typ {
		case ngEPB, ngSPB, ngPB, ngSHB, ngIDB:
			return 0, nil, start, r.errf(start, "block type %#x of %d bytes is larger than the %d-byte read buffer", typ, n, BufferSize)
		}
		d, err := r.br.Discard(int(n))
		r.off += int64(d)
		if err != nil {
			return 0, nil, start, r.truncated(start, "block", int(n), d)
		}
		return typ, nil, start, nil
	}
	b, err := r.peek(int(n))
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, nil, start, r.truncated(start, "block", int(n), len(b))
		}
		return 0, nil, start, r.errf(start, "%w", err)
	}
	if t := r.order.Uint32(b[n-4:]); t != n {
		return 0, nil, start, r.errf(start, "block type %#x: trailing length %d does not match leading length %d", typ, t, n)
	}
	r.discard(int(n))
	return typ, b[8 : n-4], start, nil
}

func (r *Reader) ngFirstSection() error {
	typ, body, start, err := r.ngBlock()
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Record = 0
		}
		return err
	}
	return r.ngSection(typ, body, start)
}

func (r *Reader) ngSection(_ uint32, body []byte, start int64) error {
	if len(body) < 16 {
		return &Error{Offset: start, Record: r.rec, Err: fmt.Errorf("section header body too short (%d bytes)", len(body))}
	}
	if v := r.order.Uint16(body[4:6]); v != 1 {
		return &Error{Offset: start, Record: r.rec, Err: fmt.Errorf("unsupported pcapng version %d.%d", v, r.order.Uint16(body[6:8]))}
	}
	return nil
}

func (r *Reader) ngInterface(body []byte, start int64) error {
	if len(body) < 8 {
		return r.errf(start, "interface block body too short (%d bytes)", len(body))
	}
	ifc := iface{linkType: uint32(r.order.Uint16(body[0:2])), snaplen: r.order.Uint32(body[4:8]), units: 1e6}
	opts := body[8:]
	for len(opts) >= 4 {
		code, l := r.order.Uint16(opts[0:2]), int(r.order.Uint16(opts[2:4]))
		if code == 0 {
			break
		}
		if 4+l > len(opts) {
			return r.errf(start, "interface block option %d overruns the block", code)
		}
		v := opts[4 : 4+l]
		switch {
		case code == 9 && l >= 1: // if_tsresol
			e := uint64(v[0] & 0x7f)
			if v[0]&0x80 != 0 {
				if e > 63 {
					return r.errf(start, "if_tsresol 2^-%d out of range", e)
				}
				ifc.units = 1 << e
			} else {
				if e > 19 {
					return r.errf(start, "if_tsresol 10^-%d out of range", e)
				}
				ifc.units = 1
				for range e {
					ifc.units *= 10
				}
			}
		case code == 14 && l >= 8: // if_tsoffset, seconds
			ifc.offsetNS = int64(r.order.Uint64(v)) * 1e9
		}
		opts = opts[4+(l+3)&^3:]
	}
	r.ifaces = append(r.ifaces, ifc)
	return nil
}

// ngTime converts a pcapng timestamp to ns since the epoch.
func ngTime(ifc *iface, ts uint64) int64 {
	u := ifc.units
	var ns uint64
	switch {
	case u == 1e9:
		ns = ts
	case u < 1e9 && 1e9%u == 0:
		ns = ts * (1e9 / u)
	default:
		sec, frac := ts/u, ts%u
		hi, lo := bits.Mul64(frac, 1e9)
		f, _ := bits.Div64(hi, lo, u)
		ns = sec*1e9 + f
	}
	return int64(ns) + ifc.offsetNS
}

func (r *Reader) ngNext(rec *Record) error {
	for {
		typ, body, start, err := r.ngBlock()
		if err != nil {
			return err
		}
		switch typ {
		case ngSHB:
			if err := r.ngSection(typ, body, start); err != nil {
				return err
			}
		case ngIDB:
			if err := r.ngInterface(body, start); err != nil {
				return err
			}
		case ngEPB, ngPB:
			if len(body) < 20 {
				return r.errf(start, "packet block body too short (%d bytes)", len(body))
			}
			var id uint32
			if typ == ngEPB {
				id = r.order.Uint32(body[0:4])
			} else {
				id = uint32(r.order.Uint16(body[0:2]))
			}
			if int(id) >= len(r.ifaces) {
				return r.errf(start, "packet for interface %d, but the section has %d interface blocks", id, len(r.ifaces))
			}
			ifc := &r.ifaces[id]
			caplen, wire := r.order.Uint32(body[12:16]), r.order.Uint32(body[16:20])
			if uint64(caplen) > uint64(len(body)-20) {
				return r.errf(start, "captured length %d exceeds the %d bytes of its block", caplen, len(body)-20)
			}
			ts := uint64(r.order.Uint32(body[4:8]))<<32 | uint64(r.order.Uint32(body[8:12]))
			r.rec++
			rec.Data = body[20 : 20+caplen]
			rec.Timestamp = ngTime(ifc, ts)
			rec.Length = int(max(wire, caplen))
			rec.LinkType = ifc.linkType
			return nil
		case ngSPB:
			if len(r.ifaces) == 0 {
				return r.errf(start, "simple packet block before any interface block")
			}
			if len(body) < 4 {
				return r.errf(start, "simple packet block body too short (%d bytes)", len(body))
			}
			wire := r.order.Uint32(body[0:4])
			caplen := min(uint64(wire), uint64(len(body)-4))
			if s := r.ifaces[0].snaplen; s != 0 {
				caplen = min(caplen, uint64(s))
			}
			r.rec++
			rec.Data = body[4 : 4+caplen]
			rec.Timestamp = 0 // simple packet blocks carry no time
			rec.Length = int(max(uint64(wire), caplen))
			rec.LinkType = r.ifaces[0].linkType
			return nil
		default:
			// interface statistics, name resolution, decryption secrets,
			// custom blocks...: nothing we need.
		}
	}
}
