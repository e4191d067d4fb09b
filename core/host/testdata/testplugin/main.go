// Command testplugin is a plugin that misbehaves on request, for the host's
// tests. Its kind comes from NG_TEST_KIND (detector or sink), else from its
// file name: a copy named *-sink is a sink (the core gives plugins a clean
// environment, so end-to-end tests name the kind that way). Its behaviour
// comes from its config block.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/netguardian/netguardian/sdk"
)

type config struct {
	// Mode: ok, panic, hang, too_many, bad_label, bad_row, error, unhealthy
	// (Stats says so; everything else works). Required,
	// so tests of "missing required attribute" have one to leave out.
	Mode string `ng:"mode,required"`
	// CrashOnCall makes the process exit on that call number (1-based), once:
	// the marker file records that it already crashed.
	CrashOnCall int    `ng:"crash_on_call"`
	Marker      string `ng:"marker"`
	// Out is where a sink appends one JSON line per stored batch.
	Out string `ng:"out"`
	// FailFirst makes a sink reject its first N batches (a database that is down).
	FailFirst int `ng:"fail_first"`
	// WriteDelay makes a sink take that long over every batch (a slow database).
	WriteDelay time.Duration `ng:"write_delay"`
	// RawPackets makes a sink ask for raw packets, with their frames, besides
	// features and alerts.
	RawPackets bool `ng:"raw_packets"`
	// WriteConcurrency lets the SDK run that many Writes at once
	// (sdk.ConcurrentSink).
	WriteConcurrency int `ng:"write_concurrency"`
	// AckOutOfOrderBelow makes the Write of an odd Seq below it return only
	// once the Write of Seq+2 has begun (or after 5 s). With two batches in
	// flight the core sends Seq+2 only after an ack, which must then be
	// that of Seq+1: every such pair is acknowledged out of order.
	AckOutOfOrderBelow uint64 `ng:"ack_out_of_order_below"`
}

type testPlugin struct {
	kind  sdk.Kind
	mu    sync.Mutex
	cfg   config
	calls int
	begun map[uint64]bool // Seqs whose Write has begun in this process
}

// WriteConcurrency makes the plugin an sdk.ConcurrentSink.
func (p *testPlugin) WriteConcurrency() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cfg.WriteConcurrency
}

// waitBegun waits until the Write of seq has begun, or up to 5 s.
func (p *testPlugin) waitBegun(seq uint64) {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		p.mu.Lock()
		begun := p.begun[seq]
		p.mu.Unlock()
		if begun {
			return
		}
	}
}

func (p *testPlugin) Describe() sdk.Info {
	info := sdk.Info{Name: "testplugin", Version: "1.0.0", Kind: p.kind, Config: sdk.SchemaOf(config{}),
		Features: []string{sdk.FeaturePackets, sdk.FeatureBytes}, Windows: []time.Duration{5 * time.Second},
		Labels: []string{"suspicious"}, Records: []sdk.RecordKind{sdk.RecordFeatures, sdk.RecordAlerts}}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cfg.RawPackets {
		info.Records = append(info.Records, sdk.RecordPackets)
		info.WantsFrames = true
	}
	return info
}

func (p *testPlugin) Configure(_ context.Context, c sdk.Config) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cfg = config{Mode: "ok"}
	if err := c.Decode(&p.cfg); err != nil {
		return err
	}
	sdk.Logger().Info("configured", "mode", p.cfg.Mode)
	return nil
}

// Stats reports the calls so far, and unhealthy in mode "unhealthy".
func (p *testPlugin) Stats() sdk.Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := sdk.Stats{Healthy: true, Counters: map[string]uint64{"calls": uint64(p.calls)}}
	if p.cfg.Mode == "unhealthy" {
		st.Healthy, st.Message = false, "told to be unhealthy"
	}
	return st
}

// call counts calls and crashes the process when asked to.
func (p *testPlugin) call() config {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if p.cfg.CrashOnCall > 0 && p.calls == p.cfg.CrashOnCall {
		if _, err := os.Stat(p.cfg.Marker); os.IsNotExist(err) {
			_ = os.WriteFile(p.cfg.Marker, []byte("crashed"), 0o644)
			os.Exit(3)
		}
	}
	return p.cfg
}

func (p *testPlugin) Detect(ctx context.Context, b *sdk.FeatureBatch) ([]sdk.Alert, error) {
	cfg := p.call()
	switch cfg.Mode {
	case "panic":
		panic("detector bug")
	case "hang":
		<-ctx.Done()
		time.Sleep(time.Hour)
	case "error":
		return nil, fmt.Errorf("model not loaded")
	case "too_many":
		out := make([]sdk.Alert, len(b.Rows)+1)
		for i := range out {
			out[i] = sdk.NewAlert(0, "suspicious", 1)
		}
		return out, nil
	case "bad_label":
		return []sdk.Alert{sdk.NewAlert(0, "made_up", 1)}, nil
	case "bad_row":
		return []sdk.Alert{sdk.NewAlert(len(b.Rows), "suspicious", 1)}, nil
	}
	var out []sdk.Alert
	for i := range b.Rows {
		if v, _ := b.Value(i, sdk.FeaturePackets); v >= 100 {
			out = append(out, sdk.NewAlert(i, "suspicious", v/1000).WithFeatures(b, sdk.FeaturePackets))
		}
	}
	return out, nil
}

func (p *testPlugin) Write(_ context.Context, rec sdk.Records) error {
	cfg := p.call()
	p.mu.Lock()
	if p.begun == nil {
		p.begun = map[uint64]bool{}
	}
	p.begun[rec.Seq] = true
	p.mu.Unlock()
	time.Sleep(cfg.WriteDelay)
	if rec.Seq%2 == 1 && rec.Seq < cfg.AckOutOfOrderBelow {
		p.waitBegun(rec.Seq + 2)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.calls <= cfg.FailFirst {
		return fmt.Errorf("database unavailable")
	}
	// at (Unix nanoseconds) lets a test measure the rate batches arrive at.
	line := map[string]any{"seq": rec.Seq, "at": time.Now().UnixNano()}
	switch {
	case rec.Features != nil:
		line["features"] = len(rec.Features.Rows)
	case rec.Packets != nil:
		line["packets"] = rec.Packets.Len()
	default:
		line["alerts"] = len(rec.Alerts)
	}
	f, err := os.OpenFile(cfg.Out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	return json.NewEncoder(f).Encode(line)
}

func main() {
	kind := sdk.Kind(os.Getenv("NG_TEST_KIND"))
	switch {
	case kind != "":
	case strings.HasSuffix(filepath.Base(os.Args[0]), "-sink"):
		kind = sdk.KindSink
	default:
		kind = sdk.KindDetector
	}
	p := &testPlugin{kind: kind}
	sdk.Logger().Info("testplugin starting", "kind", p.kind)
	sdk.Serve(p)
}
