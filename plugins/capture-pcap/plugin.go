package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	BufferMB  int           `ng:"buffer_mb" help:"live capture: socket receive buffer in MiB; a larger one absorbs longer bursts"`
}

func defaultConfig() config {
	return config{Snaplen: 262144, MaxGap: time.Minute, Promisc: true, BufferMB: 16}
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
	case c.Snaplen < 64 || c.Snaplen > 262144:
		return fmt.Errorf("snaplen %d: want 64 to 262144 bytes", c.Snaplen)
	case c.Speed < 0:
		return fmt.Errorf("speed %v: want 0 (as fast as possible) or a positive multiplier", c.Speed)
	case c.MaxGap < 0:
		return fmt.Errorf("max_gap %v: want a positive duration or 0", c.MaxGap)
	case c.BufferMB < 1 || c.BufferMB > 1024:
		return fmt.Errorf("buffer_mb %d: want 1 to 1024", c.BufferMB)
	}
	for i, f := range c.Files {
		if f == "" {
			return fmt.Errorf("files[%d] is empty", i)
		}
	}
	return nil
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
	}}
	if st.Message == "" && s.truncated > 0 {
		st.Message = fmt.Sprintf("%d file(s) ended inside a record", s.truncated)
	}
	return st
}
