//go:build linux

package sdk

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The peer-credential tests need processes in real parent/child
// relations, so the test binary re-runs itself as a helper:
// NG_PEERCRED_HELPER=serve listens and checks its peer the way a plugin
// does; =dial connects and waits.
func TestMain(m *testing.M) {
	switch os.Getenv("NG_PEERCRED_HELPER") {
	case "serve":
		os.Exit(helperServe(os.Getenv("NG_PEERCRED_SOCKET")))
	case "dial":
		os.Exit(helperDial(os.Getenv("NG_PEERCRED_SOCKET")))
	}
	os.Exit(m.Run())
}

func helperServe(path string) int {
	l, err := net.Listen("unix", path)
	if err != nil {
		fmt.Println("listen:", err)
		return 1
	}
	fmt.Println("ready")
	conn, err := l.Accept()
	if err != nil {
		fmt.Println("accept:", err)
		return 1
	}
	defer conn.Close()
	creds := pluginPeerCredentials()
	creds.logRefusals = false // the verdict goes to stdout
	if _, _, err := creds.ServerHandshake(conn); err != nil {
		fmt.Println("refused:", err)
		return 0
	}
	fmt.Println("accepted")
	return 0
}

func helperDial(path string) int {
	conn, err := net.Dial("unix", path)
	if err != nil {
		fmt.Println("dial:", err)
		return 1
	}
	_, _ = io.Copy(io.Discard, conn) // until the server hangs up
	return 0
}

// helper starts the test binary in a helper mode; wrap runs it under
// "sh -c", forked, so that the helper is a grandchild.
func helper(t *testing.T, mode, socket string, wrap bool) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if wrap {
		cmd = exec.Command("sh", "-c", `"$0" -test.run='^$'; exit $?`, os.Args[0])
	}
	cmd.Env = append(os.Environ(), "NG_PEERCRED_HELPER="+mode, "NG_PEERCRED_SOCKET="+socket)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, bufio.NewScanner(out)
}

func startServer(t *testing.T, wrap bool) (string, *exec.Cmd, *bufio.Scanner) {
	t.Helper()
	socket := filepath.Join(t.TempDir(), "plugin.sock")
	cmd, lines := helper(t, "serve", socket, wrap)
	if !lines.Scan() || lines.Text() != "ready" {
		t.Fatalf("serve helper did not start: %q %v", lines.Text(), lines.Err())
	}
	return socket, cmd, lines
}

func verdict(t *testing.T, lines *bufio.Scanner) string {
	t.Helper()
	if !lines.Scan() {
		t.Fatalf("serve helper said nothing: %v", lines.Err())
	}
	return lines.Text()
}

// A plugin admits the process that started it, also when a wrapper
// script sits between the core and the plugin.
func TestPeerCredPluginAdmitsItsCore(t *testing.T) {
	for _, wrap := range []bool{false, true} {
		socket, _, lines := startServer(t, wrap)
		conn, err := net.Dial("unix", socket)
		if err != nil {
			t.Fatal(err)
		}
		if got := verdict(t, lines); got != "accepted" {
			t.Fatalf("wrapped=%v: plugin refused the process that started it: %s", wrap, got)
		}
		conn.Close()
	}
}

// Any other process of the same user is refused, and told why.
func TestPeerCredPluginRefusesOtherProcesses(t *testing.T) {
	socket, _, lines := startServer(t, false)
	dialer, _ := helper(t, "dial", socket, false) // a sibling of the plugin
	got := verdict(t, lines)
	want := fmt.Sprintf("refused: peer pid %d did not start this plugin", dialer.Process.Pid)
	if !strings.HasPrefix(got, want) {
		t.Fatalf("got %q, want it to start with %q", got, want)
	}
}

// The core admits the plugin process it started, or a child of it.
func TestPeerCredCoreAdmitsItsPlugin(t *testing.T) {
	for _, wrap := range []bool{false, true} {
		socket, cmd, _ := startServer(t, wrap)
		conn, err := net.Dial("unix", socket)
		if err != nil {
			t.Fatal(err)
		}
		_, info, err := corePeerCredentials(cmd).ClientHandshake(t.Context(), "", conn)
		if err != nil {
			t.Fatalf("wrapped=%v: core refused its plugin: %v", wrap, err)
		}
		// Unwrapped the socket is served by the plugin itself; wrapped by
		// its child (were it the same pid, sh exec'd and the case is lost).
		if pi := info.(peerAuthInfo); (int(pi.PID) == cmd.Process.Pid) == wrap {
			t.Fatalf("wrapped=%v: peer pid %d, plugin pid %d", wrap, pi.PID, cmd.Process.Pid)
		}
		conn.Close()
	}
}

// A socket served by some other process (a plugin that names a socket not
// its own in the handshake) is refused by the core.
func TestPeerCredCoreRefusesSocketNotServedByThePlugin(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "other.sock")
	l, err := net.Listen("unix", socket) // served by the test process itself
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		if c, err := l.Accept(); err == nil {
			time.Sleep(time.Second)
			c.Close()
		}
	}()
	plugin, _ := helper(t, "dial", filepath.Join(t.TempDir(), "none.sock"), false) // any child: "the plugin"
	conn, err := net.Dial("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _, err = corePeerCredentials(plugin).ClientHandshake(t.Context(), "", conn)
	want := fmt.Sprintf("plugin socket: served by pid %d, which is not the plugin process (pid %d)", os.Getpid(), plugin.Process.Pid)
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("got %v, want %q", err, want)
	}
}

func TestParentOfReadsProc(t *testing.T) {
	got, err := parentOf(os.Getpid())
	if err != nil || got != os.Getppid() {
		t.Fatalf("parentOf(self) = %d, %v; want %d", got, err, os.Getppid())
	}
	if _, err := parentOf(-1); err == nil {
		t.Fatal("parentOf(-1) succeeded")
	}
}
