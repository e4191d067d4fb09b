package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/netguardian/netguardian/internal/pcapgen"
	"github.com/netguardian/netguardian/internal/pgtest"
)

// benchAnalyze runs `netguardian analyze` with this sink over a synthetic
// capture and reports input packets per second through the whole pipeline
// (capture plugin, windows, sink, until every batch is committed), then
// checks that nothing was lost.
func benchAnalyze(b *testing.B, packets, payload int, raw bool) {
	buildE2E(b)
	srv := pgtest.Start(b)
	dir := b.TempDir()
	capture := filepath.Join(dir, "bench.pcap")
	if err := pcapgen.Write(capture, pcapgen.Options{Packets: packets, Seed: 3, PayloadBytes: payload}); err != nil {
		b.Fatal(err)
	}
	// NG_BENCH_PLUGIN_PROFILE=FILE profiles the sink plugin (its last
	// iteration) through the plugin block's env.
	env := ""
	if prof := os.Getenv("NG_BENCH_PLUGIN_PROFILE"); prof != "" {
		abs, err := filepath.Abs(prof)
		if err != nil {
			b.Fatal(err)
		}
		env = fmt.Sprintf("env = { NETGUARDIAN_PLUGIN_CPUPROFILE = %q }", abs)
	}
	cfg := fmt.Sprintf(`sensor {
  name       = "bench"
  plugin_dir = %q
}
sink "pg" {
  plugin = %q
  %s
  config {
    url         = env("NG_E2E_DATABASE_URL")
    raw_packets = %v
  }
}
`, e2ePlugs, pluginPath, env, raw)
	cfgPath := filepath.Join(dir, "netguardian.hcl")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var pps float64
	for i := 0; i < b.N; i++ {
		cmd := exec.Command(e2eNG, "analyze", "-config", cfgPath, "-json", capture)
		cmd.Env = append(os.Environ(), "NG_E2E_DATABASE_URL="+srv.URL())
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			b.Fatalf("analyze: %v\n%s", err, stderr.String())
		}
		var rep struct {
			Packets uint64  `json:"packets"`
			Elapsed float64 `json:"elapsed_seconds"`
		}
		if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
			b.Fatal(err)
		}
		pps = float64(rep.Packets) / rep.Elapsed
	}
	b.StopTimer()
	c := db(b, srv.URL())
	if raw {
		// Re-sends of the same capture are stored once, so one copy is there.
		if n := count(b, c, "SELECT count(*) FROM raw_packets"); n != int64(packets) {
			b.Fatalf("raw_packets holds %d rows for %d packets", n, packets)
		}
	}
	if n := count(b, c, "SELECT count(*) FROM aggregated_features"); n == 0 {
		b.Fatal("no feature rows stored")
	}
	b.ReportMetric(pps, "packets/s")
}

// BenchmarkPipelineRawPackets: every frame (~470 bytes) to PostgreSQL.
func BenchmarkPipelineRawPackets(b *testing.B) { benchAnalyze(b, 300_000, 400, true) }

// BenchmarkPipelineFeaturesOnly: 1M packets in, only windows stored.
func BenchmarkPipelineFeaturesOnly(b *testing.B) { benchAnalyze(b, 1_000_000, 0, false) }
