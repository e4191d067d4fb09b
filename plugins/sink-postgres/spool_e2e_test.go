package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netguardian/netguardian/internal/pgtest"
)

// The sensor (`netguardian run`, with its disk spool) keeps every window
// while PostgreSQL is down in the middle of a replay: after it comes back,
// every feature row arrives, none twice, and the spool drains.
func TestRunSurvivesDatabaseOutage(t *testing.T) {
	buildE2E(t)
	srv := pgtest.StartCluster(t)
	if srv.External() {
		t.Skip("needs a cluster of its own to stop and start")
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf(`sensor {
  name       = "outage"
  plugin_dir = %q
  spool_dir  = %q
}
api {
  listen = "127.0.0.1:0"
}
capture "replay" {
  plugin = "capture-pcap"
  config {
    files = [%q]
    speed = 4
  }
}
sink "pg" {
  plugin = %q
  config {
    url = env("NG_E2E_DATABASE_URL")
  }
}
`, e2ePlugs, filepath.Join(dir, "spool"), mustAbs(t, "../../examples/pcaps/sample.pcap"), pluginPath)
	cfgPath := filepath.Join(dir, "netguardian.hcl")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(e2eNG, "run", "-config", cfgPath, "-drain-timeout", "90s")
	cmd.Env = append(os.Environ(), "NG_E2E_DATABASE_URL="+srv.URL())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	srv.Stop()
	t.Log("PostgreSQL stopped")
	time.Sleep(6 * time.Second) // the replay (4.4 s at speed 4) ends while the database is down
	srv.Start()
	t.Log("PostgreSQL started")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v\n%s", err, stderr.String())
		}
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("the sensor did not finish\n%s", stderr.String())
	}
	log := stderr.String()
	m := regexp.MustCompile(`msg="sensor stopped".*windows="map\[180s:(\d+) 30s:(\d+) 5s:(\d+)\]"`).FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("no final stats in the log:\n%s", log)
	}
	var windows int64
	for _, v := range m[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		windows += n
	}
	if !strings.Contains(log, "could not store batch") && !strings.Contains(log, "sink delivery interrupted") {
		t.Fatalf("the outage was never noticed; the test proves nothing:\n%s", log)
	}
	c := db(t, srv.URL())
	stored := count(t, c, "SELECT count(*) FROM aggregated_features WHERE sensor = 'outage'")
	distinct := count(t, c, "SELECT count(*) FROM (SELECT DISTINCT window_size, src_ip, window_start FROM aggregated_features) d")
	t.Logf("windows closed %d, rows stored %d (distinct %d)", windows, stored, distinct)
	if stored != windows || distinct != stored {
		t.Fatalf("stored %d feature rows (%d distinct) for %d windows", stored, distinct, windows)
	}
	if segs, _ := filepath.Glob(filepath.Join(dir, "spool", "pg", "*.seg")); len(segs) > 1 {
		t.Errorf("spool not drained: %v", segs)
	}
}

func mustAbs(t *testing.T, p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
