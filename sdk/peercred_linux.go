//go:build linux

package sdk

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// On Linux the plugin socket is authenticated by the kernel instead of by
// go-plugin's AutoMTLS: each end asks SO_PEERCRED which process is on the
// other side. The plugin accepts only a process it descends from (the core
// that started it), the core only the process it started or one of its
// children (a wrapper script that forks the plugin). Both ends are on one
// host, so encryption protected nothing that the socket's owner-only
// permissions and this check do not, and it cost a fifth of analyze's CPU
// (docs/design-decisions.md).
const autoMTLS = false

// coreDialOptions authenticates the plugin that cmd runs.
func coreDialOptions(cmd *exec.Cmd) []grpc.DialOption {
	return []grpc.DialOption{grpc.WithTransportCredentials(corePeerCredentials(cmd))}
}

func corePeerCredentials(cmd *exec.Cmd) *peerCredentials {
	return &peerCredentials{check: func(pid int32) error {
		if cmd.Process == nil {
			return errors.New("plugin process not started")
		}
		return checkDescendant(pid, cmd.Process.Pid)
	}}
}

// pluginServerOptions authenticates the core, unless the core asked for
// go-plugin's mutual TLS (a core built before this check).
func pluginServerOptions() []grpc.ServerOption {
	if os.Getenv("PLUGIN_CLIENT_CERT") != "" {
		return nil
	}
	return []grpc.ServerOption{grpc.Creds(pluginPeerCredentials())}
}

func pluginPeerCredentials() *peerCredentials {
	return &peerCredentials{check: checkAncestor, logRefusals: true}
}

// peerCredentials is a gRPC transport security that admits a Unix-socket
// peer when check accepts its process ID and it runs as our user.
type peerCredentials struct {
	check       func(pid int32) error
	logRefusals bool // plugins: say on stderr (the core's log) who was refused
}

// peerAuthInfo is what the kernel says about the other end (unexported:
// gRPC types stay out of the SDK's API).
type peerAuthInfo struct {
	credentials.CommonAuthInfo
	PID int32
	UID uint32
}

// AuthType names the mechanism.
func (peerAuthInfo) AuthType() string { return "peercred" }

func (c *peerCredentials) ClientHandshake(_ context.Context, _ string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	info, err := c.admit(conn)
	if err != nil {
		return nil, nil, fmt.Errorf("plugin socket: %w", err)
	}
	return conn, info, nil
}

func (c *peerCredentials) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	info, err := c.admit(conn)
	if err != nil {
		if c.logRefusals {
			fmt.Fprintf(os.Stderr, "netguardian plugin: refused a connection: %v\n", err)
		}
		return nil, nil, err
	}
	return conn, info, nil
}

func (c *peerCredentials) admit(conn net.Conn) (peerAuthInfo, error) {
	cred, err := peerCred(conn)
	if err != nil {
		return peerAuthInfo{}, err
	}
	if uid := uint32(os.Getuid()); cred.Uid != uid {
		return peerAuthInfo{}, fmt.Errorf("peer pid %d runs as uid %d, not %d", cred.Pid, cred.Uid, uid)
	}
	if err := c.check(cred.Pid); err != nil {
		return peerAuthInfo{}, err
	}
	// A Unix socket between two processes of one user cannot be read or
	// altered by a third without ptrace rights over them.
	return peerAuthInfo{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}, PID: cred.Pid, UID: cred.Uid}, nil
}

func (c *peerCredentials) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "peercred"}
}

func (c *peerCredentials) Clone() credentials.TransportCredentials {
	cp := *c
	return &cp
}

func (c *peerCredentials) OverrideServerName(string) error { return nil }

// peerCred returns the kernel's record of the process at the other end.
func peerCred(conn net.Conn) (*unix.Ucred, error) {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return nil, fmt.Errorf("connection over %s, want a Unix socket", conn.LocalAddr().Network())
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	if credErr != nil {
		return nil, fmt.Errorf("SO_PEERCRED: %w", credErr)
	}
	return cred, nil
}

// checkAncestor accepts pid when it is this process's parent or an
// ancestor of it (a core that started the plugin through a wrapper).
func checkAncestor(pid int32) error {
	for p, hops := os.Getppid(), 0; p > 0 && hops < 64; hops++ {
		if int32(p) == pid {
			return nil
		}
		if p == 1 {
			break
		}
		next, err := parentOf(p)
		if err != nil {
			break
		}
		p = next
	}
	return fmt.Errorf("peer pid %d did not start this plugin (parent pid %d)", pid, os.Getppid())
}

// checkDescendant accepts pid when it is root or one of root's descendants.
func checkDescendant(pid int32, root int) error {
	for p, hops := int(pid), 0; p > 1 && hops < 64; hops++ {
		if p == root {
			return nil
		}
		next, err := parentOf(p)
		if err != nil {
			break
		}
		p = next
	}
	return fmt.Errorf("served by pid %d, which is not the plugin process (pid %d) or its child", pid, root)
}

// parentOf reads pid's parent from /proc/PID/stat; the field after the
// command name, which is in parentheses and may itself hold any byte.
func parentOf(pid int) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, syscall.EINVAL
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0, syscall.EINVAL
	}
	return strconv.Atoi(f[1])
}
