package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// procState returns a process's parent and state letter from /proc, and
// false when it does not exist.
func procState(pid int) (ppid int, state string, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", false
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 2 {
		return 0, "", false
	}
	ppid, _ = strconv.Atoi(f[1])
	return ppid, f[0], true
}

// exited reports whether pid has ended: gone, or a zombie waiting for its
// new parent to reap it.
func exited(pid int) bool {
	_, state, ok := procState(pid)
	return !ok || state == "Z"
}

// A core killed with SIGKILL cannot stop its plugins; each plugin notices
// that its parent is gone and exits by itself, so no capture, detector or
// sink process is left running.
func TestPluginsExitWhenTheCoreIsKilled(t *testing.T) {
	dir := t.TempDir()
	path := sensorConfig(t, filepath.Join(dir, "spool"), "", fmt.Sprintf(`capture "replay" {
  plugin = "capture-pcap"
  config {
    files = [%q]
    speed = 1
    loop  = true
  }
}
detector "portscan" {
  plugin = "detector-portscan"
}
`, abs(t, "examples/pcaps/sample.pcap"))+detectorBlock+sinkBlock(t, filepath.Join(dir, "out.jsonl"), ""))

	s := startLiveSensor(t, path, nil)
	pids := s.pids()
	core := s.cmd.Process.Pid
	for name, pid := range pids {
		if ppid, _, ok := procState(pid); !ok || ppid != core {
			t.Fatalf("plugin %s (pid %d) is not a child of the core (pid %d): parent %d", name, pid, core, ppid)
		}
	}
	t.Cleanup(func() { // whatever outlives the test
		for _, pid := range pids {
			if !exited(pid) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-s.done
	killed := time.Now()

	// A liveness bound, not a performance figure: plugins check every
	// 500 ms, and this machine may be loaded.
	deadline := killed.Add(30 * time.Second)
	gone := map[string]time.Duration{}
	for len(gone) < len(pids) && time.Now().Before(deadline) {
		for name, pid := range pids {
			if _, ok := gone[name]; !ok && exited(pid) {
				gone[name] = time.Since(killed).Round(time.Millisecond)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("killed the core (pid %d); its plugins %v exited after %v", core, pids, gone)
	for name, pid := range pids {
		if _, ok := gone[name]; !ok {
			ppid, state, _ := procState(pid)
			t.Errorf("plugin %s (pid %d) still runs 30 s after its core was killed (state %s, parent now %d)", name, pid, state, ppid)
		}
	}
}
