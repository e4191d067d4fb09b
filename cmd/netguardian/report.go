package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/netip"
	"sort"
	"strconv"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/netguardian/netguardian/core/pipeline"
	"github.com/netguardian/netguardian/sdk"
)

// report accumulates what analyze prints. It is the pipeline's recorder:
// totals per protocol and source come from the 5s windows (each packet is
// in exactly one of them), alerts as they are raised.
type report struct {
	mu        sync.Mutex
	protocols map[string]*sdk.ProtocolCount
	sources   map[netip.Addr]*sdk.SourceTotal
	alerts    map[string]map[netip.Addr]*alertTally // label -> source
	first     time.Time
	last      time.Time
	csv       *featureCSV
}

type alertTally struct {
	count     int
	maxScore  float64
	windows   map[time.Duration]int
	detectors map[string]int
}

func newReport() *report {
	return &report{protocols: map[string]*sdk.ProtocolCount{}, sources: map[netip.Addr]*sdk.SourceTotal{}, alerts: map[string]map[netip.Addr]*alertTally{}}
}

var protocolFeatures = []struct{ name, packets, bytes string }{
	{"tcp", sdk.FeatureTCPPackets, sdk.FeatureTCPBytes},
	{"udp", sdk.FeatureUDPPackets, sdk.FeatureUDPBytes},
	{"icmp", sdk.FeatureICMPPackets, sdk.FeatureICMPBytes},
	{"other", sdk.FeatureOtherPackets, sdk.FeatureOtherBytes},
}

func (r *report) AppendFeatures(_ context.Context, b *sdk.FeatureBatch) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.csv != nil {
		if err := r.csv.write(b); err != nil {
			return err
		}
	}
	if b.Window != sdk.WindowSizes[0] {
		return nil
	}
	pk, by := b.Index(sdk.FeaturePackets), b.Index(sdk.FeatureBytes)
	protoIdx := make([][2]int, len(protocolFeatures))
	for i, pf := range protocolFeatures {
		protoIdx[i] = [2]int{b.Index(pf.packets), b.Index(pf.bytes)}
	}
	for _, row := range b.Rows {
		if r.first.IsZero() || row.Start.Before(r.first) {
			r.first = row.Start
		}
		if row.End.After(r.last) {
			r.last = row.End
		}
		if row.Values[pk] > 0 {
			s := r.sources[row.Src]
			if s == nil {
				s = &sdk.SourceTotal{Src: row.Src}
				r.sources[row.Src] = s
			}
			s.Packets += uint64(row.Values[pk])
			s.Bytes += uint64(row.Values[by])
		}
		for i, pf := range protocolFeatures {
			c := r.protocols[pf.name]
			if c == nil {
				c = &sdk.ProtocolCount{Protocol: pf.name}
				r.protocols[pf.name] = c
			}
			c.Packets += uint64(row.Values[protoIdx[i][0]])
			c.Bytes += uint64(row.Values[protoIdx[i][1]])
		}
	}
	return nil
}

func (r *report) AppendAlerts(_ context.Context, alerts []sdk.Alert) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range alerts {
		bySrc := r.alerts[a.Label]
		if bySrc == nil {
			bySrc = map[netip.Addr]*alertTally{}
			r.alerts[a.Label] = bySrc
		}
		t := bySrc[a.Src]
		if t == nil {
			t = &alertTally{windows: map[time.Duration]int{}, detectors: map[string]int{}}
			bySrc[a.Src] = t
		}
		t.count++
		t.maxScore = math.Max(t.maxScore, a.Score)
		t.windows[a.Window]++
		t.detectors[a.Detector]++
	}
	return nil
}

// Report is analyze's result; the JSON form is the same as the text one.
type Report struct {
	Packets        uint64                   `json:"packets"`
	Bytes          uint64                   `json:"bytes"`
	Sources        int                      `json:"sources"`
	CaptureStart   time.Time                `json:"capture_start"`
	CaptureEnd     time.Time                `json:"capture_end"`
	ElapsedSeconds float64                  `json:"elapsed_seconds"`
	PacketsPerSec  float64                  `json:"packets_per_second"`
	Protocols      []sdk.ProtocolCount      `json:"protocols"`
	TopSources     []SourceLine             `json:"top_sources"`
	Windows        map[string]uint64        `json:"windows"`
	Alerts         []AlertLine              `json:"alerts"`
	DecodeErrors   uint64                   `json:"decode_errors"`
	NonIP          uint64                   `json:"non_ip_packets"`
	LatePackets    uint64                   `json:"late_packets"`
	Detectors      []pipeline.DetectorStats `json:"detectors,omitempty"`
}

// SourceLine is one top source.
type SourceLine struct {
	Src     string `json:"src"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// AlertLine counts one label's alerts for one source.
type AlertLine struct {
	Label    string         `json:"label"`
	Src      string         `json:"src"`
	Count    int            `json:"count"`
	MaxScore float64        `json:"max_score"`
	Windows  map[string]int `json:"windows"`
	// Detectors counts the alerts by the detector block that raised them.
	Detectors map[string]int `json:"detectors"`
}

func (r *report) finish(st pipeline.Stats, elapsed time.Duration) Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := Report{Packets: st.Packets, Bytes: st.Bytes, Sources: len(r.sources), CaptureStart: r.first, CaptureEnd: r.last,
		ElapsedSeconds: elapsed.Seconds(), Windows: st.Windows, LatePackets: st.Aggregator.LatePackets, Detectors: st.Detectors}
	if elapsed > 0 {
		out.PacketsPerSec = float64(st.Packets) / elapsed.Seconds()
	}
	for _, c := range st.Captures {
		out.DecodeErrors += c.DecodeErrors
		out.NonIP += c.NonIP
	}
	for _, pf := range protocolFeatures {
		if c := r.protocols[pf.name]; c != nil {
			out.Protocols = append(out.Protocols, *c)
		}
	}
	srcs := make([]*sdk.SourceTotal, 0, len(r.sources))
	for _, s := range r.sources {
		srcs = append(srcs, s)
	}
	sort.Slice(srcs, func(i, j int) bool {
		if srcs[i].Bytes != srcs[j].Bytes {
			return srcs[i].Bytes > srcs[j].Bytes
		}
		return srcs[i].Src.Less(srcs[j].Src)
	})
	for _, s := range srcs[:min(10, len(srcs))] {
		out.TopSources = append(out.TopSources, SourceLine{Src: s.Src.String(), Packets: s.Packets, Bytes: s.Bytes})
	}
	for label, bySrc := range r.alerts {
		for src, t := range bySrc {
			w := map[string]int{}
			for d, n := range t.windows {
				w[d.String()] = n
			}
			out.Alerts = append(out.Alerts, AlertLine{Label: label, Src: src.String(), Count: t.count, MaxScore: t.maxScore, Windows: w, Detectors: t.detectors})
		}
	}
	sort.Slice(out.Alerts, func(i, j int) bool {
		a, b := out.Alerts[i], out.Alerts[j]
		if a.Label != b.Label {
			return a.Label < b.Label
		}
		return a.Src < b.Src
	})
	return out
}

func (r Report) writeText(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Packets\t%d\n", r.Packets)
	fmt.Fprintf(tw, "Bytes\t%d\n", r.Bytes)
	fmt.Fprintf(tw, "Sources\t%d\n", r.Sources)
	if !r.CaptureStart.IsZero() {
		fmt.Fprintf(tw, "Capture time\t%s .. %s\n", r.CaptureStart.Format(time.RFC3339), r.CaptureEnd.Format(time.RFC3339))
	}
	fmt.Fprintf(tw, "Analyzed in\t%.2fs (%.0f packets/s)\n", r.ElapsedSeconds, r.PacketsPerSec)
	if r.DecodeErrors+r.NonIP+r.LatePackets > 0 {
		fmt.Fprintf(tw, "Not in windows\t%d decode errors, %d non-IP, %d late\n", r.DecodeErrors, r.NonIP, r.LatePackets)
	}
	fmt.Fprintln(tw, "\nProtocol\tPackets\tBytes\tShare of packets")
	var total uint64
	for _, p := range r.Protocols {
		total += p.Packets
	}
	for _, p := range r.Protocols {
		share := 0.0
		if total > 0 {
			share = 100 * float64(p.Packets) / float64(total)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f%%\n", p.Protocol, p.Packets, p.Bytes, share)
	}
	fmt.Fprintln(tw, "\nTop source\tPackets\tBytes")
	for _, s := range r.TopSources {
		fmt.Fprintf(tw, "%s\t%d\t%d\n", s.Src, s.Packets, s.Bytes)
	}
	fmt.Fprintln(tw, "\nWindow size\tWindows")
	for _, k := range []string{"5s", "30s", "180s"} {
		fmt.Fprintf(tw, "%s\t%d\n", k, r.Windows[k])
	}
	if len(r.Alerts) == 0 {
		fmt.Fprintln(tw, "\nAlerts\tnone")
	} else {
		fmt.Fprintln(tw, "\nAlert label\tSource\tAlerts\tMax score\tWindows\tDetectors")
		for _, a := range r.Alerts {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%.3f\t%v\t%v\n", a.Label, a.Src, a.Count, a.MaxScore, a.Windows, a.Detectors)
		}
	}
	_ = tw.Flush()
}

// featureCSV writes every window as one CSV row: sensor, window size,
// source, start and end (Unix seconds), flags, then each feature.
type featureCSV struct {
	w      *bufio.Writer
	header bool
	buf    []byte
}

func newFeatureCSV(w io.Writer) *featureCSV { return &featureCSV{w: bufio.NewWriterSize(w, 1<<20)} }

func (c *featureCSV) write(b *sdk.FeatureBatch) error {
	if !c.header {
		c.header = true
		c.w.WriteString("sensor,window_s,src,start,end,partial,estimated")
		for _, n := range b.Names {
			c.w.WriteString("," + n)
		}
		c.w.WriteString("\n")
	}
	for _, row := range b.Rows {
		c.buf = c.buf[:0]
		c.buf = append(c.buf, b.Sensor...)
		c.buf = append(c.buf, ',')
		c.buf = strconv.AppendInt(c.buf, int64(b.Window/time.Second), 10)
		c.buf = append(c.buf, ',')
		c.buf = row.Src.AppendTo(c.buf)
		c.buf = append(c.buf, ',')
		c.buf = strconv.AppendInt(c.buf, row.Start.Unix(), 10)
		c.buf = append(c.buf, ',')
		c.buf = strconv.AppendInt(c.buf, row.End.Unix(), 10)
		c.buf = append(c.buf, ',')
		c.buf = strconv.AppendBool(c.buf, row.Flags&sdk.WindowPartial != 0)
		c.buf = append(c.buf, ',')
		c.buf = strconv.AppendBool(c.buf, row.Flags&sdk.WindowEstimated != 0)
		for _, v := range row.Values {
			c.buf = append(c.buf, ',')
			if !math.IsNaN(v) { // empty cell = missing
				c.buf = strconv.AppendFloat(c.buf, v, 'g', -1, 64)
			}
		}
		c.buf = append(c.buf, '\n')
		if _, err := c.w.Write(c.buf); err != nil {
			return err
		}
	}
	return nil
}

func (c *featureCSV) flush() error { return c.w.Flush() }
