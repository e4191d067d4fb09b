package main

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SIGINT and SIGTERM stop the sensor cleanly: the capture stops, windows
// are flushed as partial, detectors finish, sinks flush (the drain's steps
// are logged in that order), plugins end, and the exit code is 0.
func TestSignalsStopTheSensorCleanly(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			path := writeConfig(t, fmt.Sprintf(`
api {
  listen = "127.0.0.1:0"
}
capture "replay" {
  plugin = "capture-pcap"
  config {
    files = [%q]
    speed = 1.0
    loop  = true
  }
}`, abs(t, "examples/pcaps/sample.pcap")))
			cmd := exec.Command(filepath.Join(binDir, "netguardian"), "run", "-config", path)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(1500 * time.Millisecond)
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("exit: %v\n%s", err, stderr.String())
				}
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("sensor did not stop within 30s of %s\n%s", sig, stderr.String())
			}
			log := stderr.String()
			for _, want := range []string{"sensor started", "sensor stopped"} {
				if !strings.Contains(log, want) {
					t.Errorf("log lacks %q:\n%s", want, log)
				}
			}
			steps := drainLines(t, log)
			if !strings.Contains(steps[0], `reason="stop requested"`) || !strings.Contains(steps[3], "timed_out=false") {
				t.Errorf("drain: %q", steps)
			}
			t.Logf("drain: %q", steps)
			// The plugin process must be gone with the core.
			if out, _ := exec.Command("pgrep", "-f", filepath.Join(pluginDir, "capture-pcap")).Output(); len(bytes.TrimSpace(out)) > 0 {
				t.Errorf("capture-pcap still running after the core stopped: pids %s", out)
			}
		})
	}
}
