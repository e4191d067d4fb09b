package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/gopacket"
	"golang.org/x/net/bpf"

	"github.com/netguardian/netguardian/plugins/capture-pcap/internal/pcapfile"
	"github.com/netguardian/netguardian/sdk"
	"github.com/netguardian/netguardian/sdk/decode"
)

// loopGap separates two passes over the files in packet time.
const loopGap = time.Second

// publishEvery is how often (in packets) the counters are handed to the
// writer; they are also handed over before every flush and at the end.
const publishEvery = 256

// countingReader counts the bytes read from the file (under gzip: the
// compressed offset).
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

// captureFile is one open input.
type captureFile struct {
	path   string
	label  string // path, plus a note for compressed files
	f      *os.File
	count  *countingReader
	gz     *gzip.Reader
	r      *pcapfile.Reader
	size   int64
	isGzip bool
}

// consumed is the number of file bytes read so far.
func (c *captureFile) consumed() int64 {
	if c.isGzip {
		return c.count.n
	}
	return c.r.Offset()
}

func (c *captureFile) Close() error { return c.f.Close() }

// openCapture opens path, unzipping it when its first bytes are the gzip
// magic, and reads the capture header.
func openCapture(path string) (*captureFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%s: is a directory", path)
	}
	c := &captureFile{path: path, label: path, f: f, count: &countingReader{r: f}, size: st.Size()}
	br := bufio.NewReaderSize(c.count, 64<<10)
	var src io.Reader = br
	if m, _ := br.Peek(2); len(m) == 2 && m[0] == 0x1f && m[1] == 0x8b {
		c.isGzip = true
		c.label = path + " (gzip; offsets are in the uncompressed data)"
		if c.gz, err = gzip.NewReader(br); err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: gzip header: %w", path, err)
		}
		src = c.gz
	}
	if c.r, err = pcapfile.NewReader(src); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", c.label, err)
	}
	return c, nil
}

type fileInfo struct {
	size     int64
	linkType uint32
}

// probeFile checks that path is a readable capture and reports its size and
// (first) link type. For a pcapng file whose interface block comes after
// other blocks it reads up to the first packet.
func probeFile(path string) (fileInfo, error) {
	c, err := openCapture(path)
	if err != nil {
		return fileInfo{}, err
	}
	defer c.Close()
	lt := c.r.LinkType()
	if c.r.Format() == pcapfile.FormatPcapNG && lt == 0 {
		var rec pcapfile.Record
		switch err := c.r.Next(&rec); {
		case err == nil:
			lt = rec.LinkType
		case errors.Is(err, io.EOF):
		default:
			return fileInfo{}, fmt.Errorf("%s: %w", c.label, err)
		}
	}
	return fileInfo{size: c.size, linkType: lt}, nil
}

// replayState is what a replay carries across files and passes.
type replayState struct {
	p        *pcapCapture
	w        *sdk.PacketWriter
	from     uint64
	idx      uint64 // index of the next packet that passes the filter
	counters sdk.CaptureCounters
	done     int64 // bytes of the files finished in this pass

	decoders map[uint32]*decode.Decoder
	vms      map[uint32]*bpf.VM
	lastLT   uint32 // link type of dec and vm
	dec      *decode.Decoder
	vm       *bpf.VM
	pkt      sdk.Packet
	ci       gopacket.CaptureInfo

	// packet time: shift is added to every timestamp (loop passes and
	// rebase_time); first/last are this pass's extremes after the shift.
	shift       int64
	first, last int64
	havePkt     bool

	pace pacer
}

func (p *pcapCapture) replay(ctx context.Context, from uint64, w *sdk.PacketWriter) error {
	s := &replayState{p: p, w: w, from: from, decoders: map[uint32]*decode.Decoder{}, vms: map[uint32]*bpf.VM{}}
	for _, n := range p.sizes {
		s.counters.BytesTotal += uint64(n)
	}
	s.pace.init(p.cfg.Speed, p.cfg.MaxGap)
	defer s.pace.stop()
	for pass := 0; ; pass++ {
		s.done, s.havePkt = 0, false
		for _, path := range p.cfg.Files {
			if err := s.file(ctx, path); err != nil {
				p.publish(w, s.counters)
				return err
			}
		}
		p.mu.Lock()
		p.stats.passes++
		p.mu.Unlock()
		if !p.cfg.Loop || !s.havePkt {
			break
		}
		// The next pass starts loopGap after this one ended, in packet time.
		s.shift += s.last - s.first + int64(loopGap)
	}
	p.publish(w, s.counters)
	return w.Flush()
}

func (s *replayState) file(ctx context.Context, path string) error {
	p := s.p
	c, err := openCapture(path)
	if err != nil {
		return fmt.Errorf("%s: %w", pluginName, err)
	}
	defer c.Close()
	var rec pcapfile.Record
	snaplen := p.cfg.Snaplen
	for n := 0; ; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		err := c.r.Next(&rec)
		if err != nil {
			s.counters.BytesRead = uint64(s.done + c.consumed())
			if errors.Is(err, io.EOF) {
				s.done += c.size
				s.counters.BytesRead = uint64(s.done)
				return nil
			}
			if errors.Is(err, pcapfile.ErrTruncated) {
				// A file cut short (or still being written): deliver what
				// is complete, say so, and go on with the next file.
				p.logger().Warn("capture file ends inside a record; the rest of the file is skipped",
					"file", c.label, "error", err.Error(), "packets_delivered", s.idx)
				p.mu.Lock()
				p.stats.truncated++
				p.mu.Unlock()
				s.done += c.size
				return nil
			}
			return fmt.Errorf("%s: %s: %w", pluginName, c.label, err)
		}
		data := rec.Data
		if len(data) > snaplen {
			data = data[:snaplen]
		}
		if s.dec == nil || rec.LinkType != s.lastLT {
			s.switchLink(rec.LinkType)
		}
		if s.vm != nil {
			if keep, _ := s.vm.Run(data); keep == 0 {
				continue
			}
		}
		dec := s.dec
		s.ci.Timestamp = time.Unix(0, rec.Timestamp+s.shift)
		s.ci.CaptureLength, s.ci.Length = len(data), rec.Length
		if !s.havePkt && s.shift == 0 && p.cfg.Rebase {
			s.shift = time.Now().UnixNano() - rec.Timestamp
			s.ci.Timestamp = time.Unix(0, rec.Timestamp+s.shift)
		}
		pkt := &s.pkt
		if err := dec.Decode(data, s.ci, pkt); err != nil {
			s.counters.DecodeErrors++
		} else if pkt.Flags&sdk.PacketNonIP != 0 {
			s.counters.NonIP++
		}
		s.counters.Packets++
		if !s.havePkt {
			s.first, s.havePkt = pkt.Timestamp, true
		}
		s.last = max(s.last, pkt.Timestamp)
		idx := s.idx
		s.idx++
		if idx < s.from {
			continue // resume: the core has these already
		}
		if s.pace.on {
			if err := s.pace.wait(ctx, pkt.Timestamp, func() error {
				s.counters.BytesRead = uint64(s.done + c.consumed())
				p.publish(s.w, s.counters)
				return s.w.Flush()
			}); err != nil {
				return err
			}
		}
		if s.counters.Packets%publishEvery == 0 {
			s.counters.BytesRead = uint64(s.done + c.consumed())
			p.publish(s.w, s.counters)
		}
		if err := s.w.Write(pkt); err != nil {
			return err
		}
	}
}

// switchLink selects the decoder and filter for a link type.
func (s *replayState) switchLink(lt uint32) {
	dec := s.decoders[lt]
	if dec == nil {
		dec = decode.NewDecoder(decode.LinkType(lt))
		s.decoders[lt] = dec
	}
	s.lastLT, s.dec, s.vm = lt, dec, s.vmFor(lt)
}

func (s *replayState) vmFor(linkType uint32) *bpf.VM {
	if s.p.cfg.BPF == "" {
		return nil
	}
	if vm, ok := s.vms[linkType]; ok {
		return vm
	}
	// A link type first seen inside a pcapng file: compile for it now.
	var vm *bpf.VM
	if err := s.p.compileFor(linkType); err != nil {
		s.p.logger().Warn("bpf filter does not compile for this link type; its packets are dropped", "link_type", linkType, "error", err.Error())
		vm = dropAll
	} else if vm, err = filterVM(s.p.filters[linkType]); err != nil {
		s.p.logger().Warn("bpf filter cannot run in user space; packets of this link type are dropped", "link_type", linkType, "error", err.Error())
		vm = dropAll
	}
	s.vms[linkType] = vm
	return vm
}

var dropAll, _ = bpf.NewVM([]bpf.Instruction{bpf.RetConstant{Val: 0}})

// pacer sleeps so that packets are handed over at speed times their
// packet-time pace. It keeps an anchor (wall time, packet time) and sleeps
// until anchorWall + (ts - anchorTS)/speed, so rounding never accumulates.
type pacer struct {
	on      bool
	speed   float64
	maxGap  int64 // ns of packet time; 0 = no cap
	anchorW time.Time
	anchorT int64
	prevT   int64
	started bool
	timer   *time.Timer
}

// flushBefore: sleeps at least this long first hand what was read to the core.
const flushBefore = 50 * time.Millisecond

func (pc *pacer) init(speed float64, maxGap time.Duration) {
	pc.on, pc.speed, pc.maxGap = speed > 0, speed, int64(maxGap)
	if pc.on {
		pc.timer = time.NewTimer(time.Hour)
		pc.timer.Stop()
	}
}

func (pc *pacer) stop() {
	if pc.timer != nil {
		pc.timer.Stop()
	}
}

// due returns when the packet stamped ts is due, given the wall clock now
// (the zero time: at once).
func (pc *pacer) due(ts int64, now time.Time) time.Time {
	if !pc.started {
		pc.started, pc.anchorW, pc.anchorT, pc.prevT = true, now, ts, ts
		return time.Time{}
	}
	gap := ts - pc.prevT
	pc.prevT = ts
	if gap < 0 {
		// Time went backwards (next file, unordered capture): go on from here.
		pc.anchorW, pc.anchorT = now, ts
		return time.Time{}
	}
	if pc.maxGap > 0 && gap > pc.maxGap {
		// Cut a long silence to maxGap: from here on the schedule runs
		// the excess behind packet time.
		pc.anchorT += gap - pc.maxGap
	}
	return pc.anchorW.Add(time.Duration(float64(ts-pc.anchorT) / pc.speed))
}

func (pc *pacer) wait(ctx context.Context, ts int64, flush func() error) error {
	at := pc.due(ts, time.Now())
	if at.IsZero() {
		return nil
	}
	d := time.Until(at)
	if d <= 0 {
		return nil
	}
	if d >= flushBefore {
		if err := flush(); err != nil {
			return err
		}
	}
	pc.timer.Reset(d)
	select {
	case <-ctx.Done():
		pc.timer.Stop()
		return ctx.Err()
	case <-pc.timer.C:
		return nil
	}
}
