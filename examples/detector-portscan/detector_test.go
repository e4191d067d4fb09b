package main

import (
	"slices"
	"testing"
	"time"

	"github.com/netguardian/netguardian/sdk"
	"github.com/netguardian/netguardian/sdk/plugintest"
)

// bystanders is a batch of scanners and of sources that must not be
// flagged, with the verdict expected for each row ("" = no alert).
func bystanders() (*sdk.FeatureBatch, []string) {
	rows := []struct {
		want string
		f    map[string]float64
	}{
		{LabelPortScan, map[string]float64{ // nmap -sS: a SYN to each of 1000 ports
			sdk.FeaturePackets: 2000, sdk.FeatureSYN: 1994, sdk.FeatureDistinctDstPorts: 1000, sdk.FeatureDistinctDstIPs: 1, sdk.FeatureInPackets: 1994}},
		{LabelHostSweep, map[string]float64{ // ping sweep of a /24
			sdk.FeaturePackets: 512, sdk.FeatureICMPPackets: 512, sdk.FeatureDistinctDstIPs: 256}},
		{LabelPortScan, map[string]float64{ // UDP scan nobody answers
			sdk.FeaturePackets: 1001, sdk.FeatureUDPPackets: 1001, sdk.FeatureDistinctDstPorts: 1001, sdk.FeatureDistinctDstIPs: 1}},
		{LabelPortScan, map[string]float64{ // both: more ports than addresses, relative to the thresholds
			sdk.FeaturePackets: 3000, sdk.FeatureSYN: 3000, sdk.FeatureDistinctDstPorts: 2000, sdk.FeatureDistinctDstIPs: 200}},
		{"", map[string]float64{ // a web client: full connections
			sdk.FeaturePackets: 393, sdk.FeatureSYN: 23, sdk.FeatureACK: 322, sdk.FeatureDistinctDstPorts: 3, sdk.FeatureDistinctDstIPs: 1, sdk.FeatureInPackets: 842}},
		{"", map[string]float64{ // the scanned server: RSTs and SYN-ACKs to one address
			sdk.FeaturePackets: 12435, sdk.FeatureSYNACK: 21, sdk.FeatureRST: 12059, sdk.FeatureDistinctDstPorts: 37, sdk.FeatureDistinctSrcPorts: 12062, sdk.FeatureDistinctDstIPs: 2, sdk.FeatureInPackets: 12316}},
		{"", map[string]float64{ // a DNS server answering many client ports
			sdk.FeaturePackets: 5000, sdk.FeatureUDPPackets: 5000, sdk.FeatureDistinctDstPorts: 3000, sdk.FeatureDistinctDstIPs: 40, sdk.FeatureInPackets: 5000}},
		{"", map[string]float64{ // a scan too small for the default thresholds
			sdk.FeaturePackets: 29, sdk.FeatureSYN: 29, sdk.FeatureDistinctDstPorts: 29}},
		{"", map[string]float64{}}, // inbound-only
	}
	maps := make([]map[string]float64, len(rows))
	want := make([]string, len(rows))
	for i, r := range rows {
		maps[i], want[i] = r.f, r.want
	}
	return plugintest.Batch(30*time.Second, maps...), want
}

func checkLabels(b *sdk.FeatureBatch, want []string) func(plugintest.TB, []sdk.Alert) {
	return func(t plugintest.TB, alerts []sdk.Alert) {
		got := make([]string, len(b.Rows))
		for _, a := range alerts {
			got[a.Row] = a.Label
		}
		if !slices.Equal(got, want) {
			t.Errorf("labels by row = %q, want %q", got, want)
		}
	}
}

func TestConformance(t *testing.T) {
	bin := plugintest.Build(t, ".")
	b, want := bystanders()
	res := plugintest.RunDetector(t, bin, plugintest.DetectorSuite{
		BadConfigs: []map[string]any{
			{"min_probe_ratio": 0},
			{"min_probe_ratio": 1.5},
			{"min_distinct_dst_ports": 0},
			{"min_distinct_dst_ips": -3},
			{"min_packets": -1},
			{"windows": []float64{60}},
			{"windows": []float64{}},
			{"min_packets": "many"}, // refused by the core's schema check
		},
		Fixtures: []plugintest.Fixture{{Name: "scanners and bystanders", Batch: b, Check: checkLabels(b, want)}},
	})
	if !slices.Equal(res.Info.Windows, []time.Duration{30 * time.Second}) {
		t.Errorf("default windows = %v, want [30s]", res.Info.Windows)
	}
	alerts := res.Alerts["scanners and bystanders"]
	if i := slices.IndexFunc(alerts, func(a sdk.Alert) bool { return a.Row == 3 }); i < 0 || alerts[i].RunnerUp != LabelHostSweep {
		t.Errorf("a source matching both rules: alerts %+v, want host_sweep as runner-up", alerts)
	}
	plugintest.Golden(t, "scanners-and-bystanders", alerts)
}

// The config changes what Describe reports and what is flagged.
func TestConfigLowersThresholdsAndAddsWindows(t *testing.T) {
	d := plugintest.StartDetector(t, pluginPath, map[string]any{"windows": []float64{5, 30}, "min_distinct_dst_ports": 20, "min_packets": 20})
	if got := d.Info().Windows; !slices.Equal(got, []time.Duration{5 * time.Second, 30 * time.Second}) {
		t.Fatalf("windows = %v, want [5s 30s]", got)
	}
	b, _ := bystanders()
	alerts := d.Detect(b)
	if !slices.ContainsFunc(alerts, func(a sdk.Alert) bool { return a.Row == 7 && a.Label == LabelPortScan }) {
		t.Fatalf("a 29-port scan is not flagged with min_distinct_dst_ports = 20: %+v", alerts)
	}
}
