package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/netguardian/netguardian/sdk"
)

// Version is this plugin's version, shown by `netguardian plugins`.
const Version = "1.0.0"

// Labels the detector raises.
const (
	LabelPortScan  = "port_scan"
	LabelHostSweep = "host_sweep"
)

// config is the plugin's `config { }` block; the tags give the schema.
type config struct {
	MinDstPorts   float64   `ng:"min_distinct_dst_ports" help:"distinct destination ports in one window from which a source is a port scanner"`
	MinDstIPs     float64   `ng:"min_distinct_dst_ips" help:"distinct destination addresses in one window from which a source is sweeping hosts"`
	MinProbeRatio float64   `ng:"min_probe_ratio" help:"share of the source's packets that must be probes (TCP SYNs without ACK, ICMP, UDP nobody answered), 0 to 1"`
	MinPackets    float64   `ng:"min_packets" help:"packets a source must send in the window to be considered"`
	Windows       []float64 `ng:"windows" help:"window sizes to score, in seconds (5, 30, 180)"`
}

func defaults() config {
	return config{MinDstPorts: 100, MinDstIPs: 50, MinProbeRatio: 0.5, MinPackets: 50, Windows: []float64{30}}
}

func (c config) validate() error {
	switch {
	case c.MinDstPorts < 1:
		return fmt.Errorf("min_distinct_dst_ports = %v: must be at least 1", c.MinDstPorts)
	case c.MinDstIPs < 1:
		return fmt.Errorf("min_distinct_dst_ips = %v: must be at least 1", c.MinDstIPs)
	case !(c.MinProbeRatio > 0 && c.MinProbeRatio <= 1):
		return fmt.Errorf("min_probe_ratio = %v: must be more than 0 and at most 1", c.MinProbeRatio)
	case c.MinPackets < 0:
		return fmt.Errorf("min_packets = %v: must be 0 or more", c.MinPackets)
	case len(c.Windows) == 0:
		return fmt.Errorf("windows: list at least one window size (5, 30 or 180)")
	}
	for _, w := range c.Windows {
		if !slices.Contains(sdk.WindowSizes, seconds(w)) {
			return fmt.Errorf("windows: %v is not a window size the core computes (5, 30 or 180)", w)
		}
	}
	return nil
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// features are the features Detect reads, in this order.
var features = []string{
	sdk.FeaturePackets, sdk.FeatureSYN, sdk.FeatureICMPPackets, sdk.FeatureUDPPackets,
	sdk.FeatureDistinctDstPorts, sdk.FeatureDistinctDstIPs, sdk.FeatureInPackets, sdk.FeatureInICMPUnreach,
}

const (
	fPackets = iota
	fSYN
	fICMP
	fUDP
	fDstPorts
	fDstIPs
	fIn
	fInUnreach
)

type detector struct {
	mu  sync.Mutex
	cfg config
}

func newDetector() *detector { return &detector{cfg: defaults()} }

func (d *detector) Describe() sdk.Info {
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()
	windows := make([]time.Duration, len(cfg.Windows))
	for i, w := range cfg.Windows {
		windows[i] = seconds(w)
	}
	return sdk.Info{
		Name: "detector-portscan", Version: Version, Kind: sdk.KindDetector,
		Config:   sdk.SchemaOf(defaults()),
		Features: features, Windows: windows,
		Labels: []string{LabelPortScan, LabelHostSweep},
	}
}

func (d *detector) Configure(_ context.Context, c sdk.Config) error {
	cfg := defaults()
	if err := c.Decode(&cfg); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	d.mu.Lock()
	d.cfg = cfg
	d.mu.Unlock()
	return nil
}

// verdict is one rule's result for a row.
type verdict struct {
	label    string
	distinct float64 // distinct ports or addresses
	over     float64 // distinct / threshold
	score    float64
}

// Detect flags, per row, a source that sent at least min_packets packets,
// mostly probes, to many ports (port_scan) or many addresses (host_sweep).
// A source matching both gets the stronger label and the other as runner-up.
// Missing values (NaN) count as 0.
func (d *detector) Detect(_ context.Context, b *sdk.FeatureBatch) ([]sdk.Alert, error) {
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()
	vec := sdk.NewVector(b, features...)
	var out []sdk.Alert
	for i, row := range b.Rows {
		get := func(k int) float64 {
			if v := vec.Get(row, k); !math.IsNaN(v) && !math.IsInf(v, 0) {
				return v
			}
			return 0
		}
		packets := get(fPackets)
		if packets <= 0 || packets < cfg.MinPackets {
			continue
		}
		// UDP packets the source got nothing back for: a UDP scan's probes.
		// Answers (a DNS server's, say) are inbound packets that are not
		// ICMP unreachables.
		unanswered := math.Max(0, get(fUDP)-(get(fIn)-get(fInUnreach)))
		probes := math.Min(packets, get(fSYN)+get(fICMP)+unanswered)
		ratio := probes / packets
		if ratio < cfg.MinProbeRatio {
			continue
		}
		var hits []verdict
		for _, r := range []struct {
			label     string
			distinct  float64
			threshold float64
		}{{LabelPortScan, get(fDstPorts), cfg.MinDstPorts}, {LabelHostSweep, get(fDstIPs), cfg.MinDstIPs}} {
			if r.distinct >= r.threshold {
				// The score grows with how far past the threshold the source
				// went, scaled by how much of its traffic is probing.
				hits = append(hits, verdict{r.label, r.distinct, r.distinct / r.threshold, ratio * (1 - math.Exp(-r.distinct/r.threshold))})
			}
		}
		if len(hits) == 0 {
			continue
		}
		slices.SortFunc(hits, func(a, b verdict) int {
			switch {
			case a.over > b.over:
				return -1
			case a.over < b.over:
				return 1
			}
			return 0
		})
		top := hits[0]
		reasons := []string{sdk.FeatureDistinctDstPorts, sdk.FeatureDistinctDstIPs, sdk.FeatureSYN, sdk.FeaturePackets}
		if top.label == LabelHostSweep {
			reasons[0], reasons[1] = reasons[1], reasons[0]
		}
		a := sdk.NewAlert(i, top.label, round(top.score)).WithFeatures(b, reasons...)
		if top.over >= 10 {
			a.Severity = sdk.SeverityHigh
		}
		if len(hits) > 1 {
			a.RunnerUp, a.RunnerUpScore = hits[1].label, round(hits[1].score)
		}
		details, err := json.Marshal(map[string]float64{"probe_ratio": round(ratio), "probes": probes, "times_threshold": round(top.over)})
		if err != nil {
			return nil, err
		}
		a.Details = details
		out = append(out, a)
	}
	return out, nil
}

// round keeps four decimals: scores are heuristics, not measurements.
func round(v float64) float64 { return math.Round(v*1e4) / 1e4 }
