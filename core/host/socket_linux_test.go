//go:build linux

package host

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/netguardian/netguardian/internal/syncbuf"
	"github.com/netguardian/netguardian/sdk"
	pb "github.com/netguardian/netguardian/sdk/proto/netguardian/v1"
)

// With NG_HOST_TEST_DIAL set, the test binary is a helper instead: a
// process of the same user, but not the core, that calls Describe on a
// plugin's socket and prints what happened.
func init() {
	if socket := os.Getenv("NG_HOST_TEST_DIAL"); socket != "" {
		os.Exit(dialAsStranger(socket))
	}
}

// dialAsStranger is that helper.
func dialAsStranger(socket string) int {
	cc, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Println("client:", err)
		return 1
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := pb.NewPluginServiceClient(cc).Describe(ctx, &pb.Empty{}); err != nil {
		fmt.Println("describe failed:", err)
		return 0
	}
	fmt.Println("describe answered")
	return 0
}

// The plugin's socket admits the core that started it, authenticated by
// the kernel's peer credentials, and refuses any other process of the same
// user; the plugin's refusal reaches the core's log.
func TestPluginSocketAdmitsOnlyItsCore(t *testing.T) {
	var buf syncbuf.Buffer
	p, err := Start(context.Background(), Spec{Name: "guarded", Kind: sdk.KindDetector, Path: testPluginPath, Env: []string{"NG_TEST_KIND=detector"}},
		slog.New(slog.NewTextHandler(&buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	conn, err := p.Conn()
	if err != nil {
		t.Fatal(err)
	}
	if got := conn.Transport(); got != "peercred" {
		t.Fatalf("core's connection to the plugin is authenticated by %q, want peercred", got)
	}
	if !strings.Contains(buf.String(), "transport=peercred") {
		t.Errorf("the start-up line does not say how the socket was authenticated:\n%s", buf.String())
	}

	stranger := exec.Command(os.Args[0], "-test.run=^$")
	stranger.Env = append(os.Environ(), "NG_HOST_TEST_DIAL="+conn.Addr().String())
	out, err := stranger.CombinedOutput()
	if err != nil {
		t.Fatalf("stranger: %v\n%s", err, out)
	}
	if !strings.HasPrefix(string(out), "describe failed:") {
		t.Fatalf("a process that did not start the plugin got an answer:\n%s", out)
	}
	want := fmt.Sprintf("refused a connection: peer pid %d did not start this plugin", stranger.Process.Pid)
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(buf.String(), want) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(buf.String(), want) {
		t.Fatalf("core's log does not carry the plugin's refusal %q:\n%s", want, buf.String())
	}
	// The core's own connection is unaffected.
	if err := conn.Ping(); err != nil {
		t.Fatalf("core lost its plugin after a stranger was refused: %v", err)
	}
}
