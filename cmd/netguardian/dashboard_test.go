package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/netguardian/netguardian/core/api/browsertest"
)

// The real sensor replaying an attack capture, seen in headless Chromium:
// the packet counter rises, a chart draws, and the port scanner's alert
// row appears. With NG_UPDATE_SCREENSHOT=1 its screenshot becomes
// docs/dashboard.png.
func TestDashboardShowsLiveSensor(t *testing.T) {
	if _, err := os.Stat(browsertest.DefaultChromium); err != nil {
		t.Skipf("Chromium not installed at %s (scripts/install-deps.sh installs Debian's chromium)", browsertest.DefaultChromium)
	}
	path := writeConfig(t, fmt.Sprintf(`
api {
  listen = "127.0.0.1:0"
  snapshot_interval = "500ms"
}
capture "replay" {
  plugin = "capture-pcap"
  config {
    files = [%q]
    speed = 10
    loop  = true
  }
}
detector "portscan" {
  plugin = "detector-portscan"
}
detector "xgboost" {
  plugin = "detector-xgboost"
}`, abs(t, "examples/pcaps/sample.pcap")))
	cmd := exec.Command(filepath.Join(binDir, "netguardian"), "run", "-config", path)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	// The log names the address the API listens on.
	addr := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`api=(http://\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
				break
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	var url string
	select {
	case url = <-addr:
	case <-time.After(30 * time.Second):
		t.Fatal("the sensor never logged its API address")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := browsertest.Check(ctx, browsertest.Options{URL: url, AlertSrc: "10.99.0.28", Settle: 3 * time.Second, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	if res.PacketsAfter <= res.PacketsBefore || res.ChartWidth == 0 || res.AlertLabel != "port_scan" || len(res.Exceptions) > 0 {
		t.Fatalf("dashboard: %+v", *res)
	}
	t.Logf("packets %v → %v, chart %dx%d, alert %q", res.PacketsBefore, res.PacketsAfter, res.ChartWidth, res.ChartHeight, res.AlertLabel)
	// NG_UPDATE_SCREENSHOT=1 refreshes the README's picture; otherwise the
	// screenshot stays out of the work tree.
	shot := filepath.Join(t.TempDir(), "dashboard.png")
	if os.Getenv("NG_UPDATE_SCREENSHOT") == "1" {
		shot = filepath.Join(repoRoot, "docs", "dashboard.png")
	}
	if err := os.WriteFile(shot, res.Screenshot, 0o644); err != nil {
		t.Fatal(err)
	}
}
