// Command detector is a deterministic detector for sink-postgres's
// end-to-end test: it flags every 5s or 30s window of a source that sent at
// least min_packets packets, with details and top features (one of them
// NaN, as a detector explaining with a missing feature would).
package main

import (
	"context"
	"encoding/json"
	"math"
	"time"

	"github.com/netguardian/netguardian/sdk"
)

type config struct {
	MinPackets float64 `ng:"min_packets" help:"packets in a window that raise an alert"`
}

type detector struct{ cfg config }

func (d *detector) Describe() sdk.Info {
	return sdk.Info{Name: "busy-source", Version: "1.0.0", Kind: sdk.KindDetector, Config: sdk.SchemaOf(config{MinPackets: 20}),
		Features: []string{sdk.FeaturePackets, sdk.FeatureBytes, sdk.FeatureHandshakeLatency},
		Windows:  []time.Duration{5 * time.Second, 30 * time.Second}, Labels: []string{"busy_source"}}
}

func (d *detector) Configure(_ context.Context, c sdk.Config) error {
	d.cfg = config{MinPackets: 20}
	return c.Decode(&d.cfg)
}

func (d *detector) Detect(_ context.Context, b *sdk.FeatureBatch) ([]sdk.Alert, error) {
	var out []sdk.Alert
	for i, r := range b.Rows {
		pk := r.Values[0]
		if pk < d.cfg.MinPackets {
			continue
		}
		a := sdk.NewAlert(i, "busy_source", math.Min(1, pk/1000))
		a.Severity = sdk.SeverityHigh
		a.RunnerUp, a.RunnerUpScore = "benign", 0.01
		a.TopFeatures = []sdk.FeatureValue{
			{Name: sdk.FeaturePackets, Value: pk, Weight: 0.7},
			{Name: sdk.FeatureHandshakeLatency, Value: math.NaN(), Weight: 0.1},
		}
		a.Details, _ = json.Marshal(map[string]any{"rule": "packets >= min_packets", "min_packets": d.cfg.MinPackets,
			"packets": pk, "bytes": r.Values[1], "note": "é ✓"})
		out = append(out, a)
	}
	return out, nil
}

func main() { sdk.Serve(&detector{}) }
