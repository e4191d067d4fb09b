// Command badplugin is a detector that breaks one rule of the plugin
// contract, chosen by NG_BAD_MODE, for the tests of sdk/plugintest:
//
//	ok              a correct detector (the control)
//	protov2         speaks plugin protocol version 2 (calls go-plugin directly)
//	newschema       claims a feature schema newer than the SDK's
//	unknownfeature  asks for a feature that does not exist
//	baddescribe     an unknown attribute type, a 7s window, no labels
//	configpanic     panics in Configure on a bad threshold
//	configsilent    refuses a bad threshold with an empty message
//	configexit      exits in Configure on a bad threshold
//	nanscore        answers rows with NaN values with a NaN score
package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/netguardian/netguardian/sdk"
)

type config struct {
	Threshold float64 `ng:"threshold" help:"packets that raise an alert"`
}

type detector struct {
	mode string
	cfg  config
}

func (d *detector) Describe() sdk.Info {
	info := sdk.Info{Name: "badplugin", Version: "0.0.1", Kind: sdk.KindDetector, Config: sdk.SchemaOf(config{Threshold: 100}),
		Features: []string{sdk.FeaturePackets}, Windows: []time.Duration{30 * time.Second}, Labels: []string{"busy"}}
	switch d.mode {
	case "newschema":
		info.FeatureSchemaVersion = sdk.FeatureSchemaVersion + 1
	case "unknownfeature":
		info.Features = append(info.Features, "made_up_total")
	case "baddescribe":
		info.Config = append(info.Config, sdk.Attribute{Name: "level", Type: "integer"})
		info.Windows = []time.Duration{7 * time.Second}
		info.Labels = nil
	}
	return info
}

func (d *detector) Configure(_ context.Context, c sdk.Config) error {
	cfg := config{Threshold: 100}
	if err := c.Decode(&cfg); err != nil {
		return err
	}
	if cfg.Threshold < 0 {
		switch d.mode {
		case "configpanic":
			panic("negative threshold")
		case "configsilent":
			return errors.New("")
		case "configexit":
			os.Exit(2)
		}
		return fmt.Errorf("threshold %v: must be 0 or more", cfg.Threshold)
	}
	d.cfg = cfg
	return nil
}

func (d *detector) Detect(_ context.Context, b *sdk.FeatureBatch) ([]sdk.Alert, error) {
	var out []sdk.Alert
	for i, row := range b.Rows {
		v := row.Values[0]
		if d.mode == "nanscore" && math.IsNaN(v) {
			out = append(out, sdk.NewAlert(i, "busy", v))
			continue
		}
		if v >= d.cfg.Threshold {
			out = append(out, sdk.NewAlert(i, "busy", 1))
		}
	}
	return out, nil
}

// v2Plugin is the detector set of a plugin speaking protocol version 2.
type v2Plugin struct{ plugin.NetRPCUnsupportedPlugin }

func (v2Plugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error { return nil }
func (v2Plugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("server only")
}

func main() {
	mode := os.Getenv("NG_BAD_MODE")
	if mode == "protov2" {
		// The same handshake as sdk.Serve (the cookie is copied from
		// sdk/serve.go), but protocol version 2.
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig: plugin.HandshakeConfig{ProtocolVersion: 2, MagicCookieKey: "NETGUARDIAN_PLUGIN",
				MagicCookieValue: "d3c5e9f2-netguardian-plugin-v1"},
			VersionedPlugins: map[int]plugin.PluginSet{2: {"detector": v2Plugin{}}},
			GRPCServer:       plugin.DefaultGRPCServer,
		})
		return
	}
	sdk.Serve(&detector{mode: mode})
}
