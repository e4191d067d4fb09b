package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/bpf"

	"github.com/netguardian/netguardian/sdk"
	"github.com/netguardian/netguardian/sdk/decode"
)

const (
	pluginName    = "capture-pcap"
	pluginVersion = "0.1.0"
)

// config is the plugin's `config { }` block. The field values of
// defaultConfig are the schema's defaults.
type config struct {
	Files     []string      `ng:"files" help:"pcap/pcapng files to replay, in order; gzip-compressed files are recognised by their content. Exactly one of files and interface."`
	Interface string        `ng:"interface" help:"network interface to capture from live (Linux AF_PACKET; needs root or CAP_NET_RAW). Exactly one of files and interface."`
	BPF       string        `ng:"bpf" help:"capture filter in tcpdump syntax, e.g. \"tcp and port 80\" (compiled by the tcpdump program)"`
	Snaplen   int           `ng:"snaplen" help:"bytes kept of each frame; the wire length is always reported"`
	Speed     float64       `ng:"speed" help:"replay speed: 0 = as fast as possible, 1.0 = real time, 2.0 = twice as fast"`
	Loop      bool          `ng:"loop" help:"replay the files forever (each pass shifted in time so packet time keeps increasing); ignored for live capture"`
	Rebase    bool          `ng:"rebase_time" help:"shift packet times so that the replay's first packet is stamped with the time the replay started"`
	MaxGap    time.Duration `ng:"max_gap" help:"with speed > 0, a longer silence in packet time is cut to this (0 = wait out every gap)"`
	Promisc   bool          `ng:"promisc" help:"live capture: put the interface in promiscuous mode"`
	RingSize  string        `ng:"ring_size" help:"live capture: size of the TPACKET_V3 receive ring shared with the kernel, e.g. \"64MiB\"; a larger one absorbs longer bursts and stalls (units B, KiB, MiB, GiB)"`
	BlockSize string        `ng:"block_size" help:"live capture: size of one ring block, a power of two that holds at least one frame of snaplen; the kernel hands the ring over a block at a time"`

	ringBytes, blockBytes int // RingSize and BlockSize, set by validate
}

// maxSnaplen is the largest snaplen, and the default: whole frames.
const maxSnaplen = 262144

// ringBlockOverhead is the most a ring block spends besides one frame's
// captured bytes: the block descriptor (48), tpacket3_hdr and sockaddr_ll
// with their alignment (82 before an Ethernet header), rounded up with room
// to spare. The kernel cuts a longer frame below snaplen to fit a block,
// so configurations that allow one are rejected.
const ringBlockOverhead = 256

func defaultConfig() config {
	return config{Snaplen: maxSnaplen, MaxGap: time.Minute, Promisc: true, RingSize: "64MiB", BlockSize: "1MiB"}
}

// pcapCapture implements sdk.Capture.
type pcapCapture struct {
	log *slog.Logger // nil: sdk.Logger()

	cfg     config
	rt      sdk.Runtime
	filters map[uint32][]bpf.RawInstruction // compiled bpf per link type
	sizes   []int64                         // file sizes

	mu    sync.Mutex
	stats stats
}

// stats are the plugin's own counters, reported by Stats.
type stats struct {
	c         sdk.CaptureCounters
	truncated uint64 // files that ended inside a record
	passes    uint64 // completed passes over the files
	freezes   uint64 // live: how often the ring filled up (tp_freeze_q_cnt)
	err       string
}

func (p *pcapCapture) logger() *slog.Logger {
	if p.log == nil {
		p.log = sdk.Logger()
	}
	return p.log
}

func (p *pcapCapture) Describe() sdk.Info {
	return sdk.Info{Name: pluginName, Version: pluginVersion, Kind: sdk.KindCapture, Config: sdk.SchemaOf(defaultConfig())}
}

func (p *pcapCapture) Configure(ctx context.Context, c sdk.Config) error {
	cfg := defaultConfig()
	if err := c.Decode(&cfg); err != nil {
		return fmt.Errorf("%s: %w", pluginName, err)
	}
	if err := cfg.validate(); err != nil {
		return fmt.Errorf("%s: %w", pluginName, err)
	}
	p.cfg, p.rt = cfg, c.Runtime
	p.filters = map[uint32][]bpf.RawInstruction{}
	p.sizes = nil
	if cfg.Interface != "" {
		return p.configureLive()
	}
	// Open every file now: a missing file, a file that is not a capture or
	// an unsupported link type stops the sensor at start.
	for _, path := range cfg.Files {
		info, err := probeFile(path)
		if err != nil {
			return fmt.Errorf("%s: %w", pluginName, err)
		}
		p.sizes = append(p.sizes, info.size)
		if !decode.Supported(decode.LinkType(info.linkType)) {
			return fmt.Errorf("%s: %s: link type %d is not supported (supported: Ethernet, Linux cooked v1/v2, raw IP, BSD loopback)", pluginName, path, info.linkType)
		}
		if cfg.BPF != "" {
			if err := p.compileFor(info.linkType); err != nil {
				return fmt.Errorf("%s: %w", pluginName, err)
			}
		}
	}
	return nil
}

func (p *pcapCapture) compileFor(linkType uint32) error {
	if _, ok := p.filters[linkType]; ok {
		return nil
	}
	prog, err := compileFilter(p.cfg.BPF, linkType, p.cfg.Snaplen)
	if err != nil {
		return err
	}
	p.filters[linkType] = prog
	return nil
}

func (c *config) validate() error {
	switch {
	case len(c.Files) == 0 && c.Interface == "":
		return errors.New("set one of files (replay) or interface (live capture)")
	case len(c.Files) > 0 && c.Interface != "":
		return errors.New("set files or interface, not both")
	case c.Snaplen < 64 || c.Snaplen > maxSnaplen:
		return fmt.Errorf("snaplen %d: want 64 to %d bytes", c.Snaplen, maxSnaplen)
	case c.Speed < 0:
		return fmt.Errorf("speed %v: want 0 (as fast as possible) or a positive multiplier", c.Speed)
	case c.MaxGap < 0:
		return fmt.Errorf("max_gap %v: want a positive duration or 0", c.MaxGap)
	}
	for i, f := range c.Files {
		if f == "" {
			return fmt.Errorf("files[%d] is empty", i)
		}
	}
	return c.validateRing()
}

// validateRing checks ring_size and block_size and sets ringBytes and
// blockBytes.
func (c *config) validateRing() error {
	block, err := parseSize(c.BlockSize)
	if err != nil {
		return fmt.Errorf("block_size: %w", err)
	}
	ring, err := parseSize(c.RingSize)
	if err != nil {
		return fmt.Errorf("ring_size: %w", err)
	}
	page := int64(os.Getpagesize())
	switch {
	case block < page || block > 256<<20 || block&(block-1) != 0:
		return fmt.Errorf("block_size %q: want a power of two from %d bytes (the page size) to 256MiB", c.BlockSize, page)
	case block < int64(c.Snaplen)+ringBlockOverhead:
		return fmt.Errorf("block_size %q cannot hold a whole frame of snaplen %d (a block needs snaplen + %d bytes): raise block_size or lower snaplen", c.BlockSize, c.Snaplen, ringBlockOverhead)
	case ring > 4<<30:
		return fmt.Errorf("ring_size %q: want at most 4GiB", c.RingSize)
	case ring > math.MaxInt:
		return fmt.Errorf("ring_size %q: too large for a 32-bit address space", c.RingSize)
	case ring%block != 0 || ring/block < 2:
		return fmt.Errorf("ring_size %q: want a multiple of block_size (%s) of at least two blocks", c.RingSize, c.BlockSize)
	}
	c.ringBytes, c.blockBytes = int(ring), int(block)
	return nil
}

// parseSize reads a size such as "64MiB", "512KiB" or "1048576".
func parseSize(s string) (int64, error) {
	num, mult := s, int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n <= 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("%q: want a positive size such as \"64MiB\" (units B, KiB, MiB, GiB)", s)
	}
	return n * mult, nil
}

func (p *pcapCapture) Capture(ctx context.Context, from uint64, w *sdk.PacketWriter) error {
	if p.filters == nil {
		return fmt.Errorf("%s: Capture called before Configure", pluginName)
	}
	var err error
	if p.cfg.Interface != "" {
		err = p.captureLive(ctx, w)
	} else {
		err = p.replay(ctx, from, w)
	}
	if err != nil && ctx.Err() == nil {
		p.mu.Lock()
		p.stats.err = err.Error()
		p.mu.Unlock()
	}
	return err
}

// publish hands the counters to the writer (they travel with the next
// batch) and to Stats.
func (p *pcapCapture) publish(w *sdk.PacketWriter, c sdk.CaptureCounters) {
	w.SetCounters(c)
	p.mu.Lock()
	p.stats.c = c
	p.mu.Unlock()
}

// Stats implements sdk.Statser.
func (p *pcapCapture) Stats() sdk.Stats {
	p.mu.Lock()
	s := p.stats
	p.mu.Unlock()
	st := sdk.Stats{Healthy: s.err == "", Message: s.err, Counters: map[string]uint64{
		"packets":         s.c.Packets,
		"bytes_read":      s.c.BytesRead,
		"bytes_total":     s.c.BytesTotal,
		"kernel_drops":    s.c.KernelDrops,
		"decode_errors":   s.c.DecodeErrors,
		"non_ip":          s.c.NonIP,
		"truncated_files": s.truncated,
		"passes":          s.passes,
		"ring_freezes":    s.freezes,
	}}
	if st.Message == "" && s.truncated > 0 {
		st.Message = fmt.Sprintf("%d file(s) ended inside a record", s.truncated)
	}
	return st
}
