// Package pgtest gives tests a real, empty PostgreSQL database.
//
// When NETGUARDIAN_TEST_DATABASE_URL is set (a postgres:// URL of a role
// that may CREATE DATABASE), Start creates a fresh database there for each
// call and drops it when the test ends. Otherwise the first Start of a test
// binary starts a throwaway cluster (initdb in a temporary directory,
// postgres on a free 127.0.0.1 port with its socket in that directory,
// fsync off) that every later Start shares, each with its own database. Call
// Shutdown from TestMain after m.Run to stop it:
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		pgtest.Shutdown()
//		os.Exit(code)
//	}
//
// (The cluster's postgres also stops by itself when the test binary dies:
// it runs with a parent-death signal.)
//
// StartCluster always starts a cluster of its own, whose Stop and Start
// simulate the database going away and coming back on the same port with
// the same data.
//
// Programs that are not tests (the end-to-end benchmark) start the same
// throwaway cluster with NewCluster and manage its databases themselves.
//
// The server binaries are found under /usr/lib/postgresql/*/bin (highest
// version) or on PATH. As root, initdb and postgres run as the `postgres`
// system user (or `nobody`), which owns the cluster's directory. Without
// the binaries, Start fails the test naming the Debian package
// `postgresql`: the suite requires it (scripts/install-deps.sh installs it).
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the environment variable of an existing server to use.
const EnvURL = "NETGUARDIAN_TEST_DATABASE_URL"

// Server is one test's database.
type Server struct {
	t        testing.TB
	url      string // of the test's database
	dbname   string
	password string
	c        *cluster // nil with EnvURL
	shared   bool
}

// URL returns a postgres:// URL of the test's database, for pgx.
func (s *Server) URL() string { return s.url }

// Database returns the name of the test's database.
func (s *Server) Database() string { return s.dbname }

// Password returns the password in URL ("" when it has none), so tests can
// check that it never appears in errors or logs.
func (s *Server) Password() string { return s.password }

// Port returns the TCP port of the server.
func (s *Server) Port() int {
	u, err := url.Parse(s.url)
	if err != nil {
		return 0
	}
	p, _ := strconv.Atoi(u.Port())
	return p
}

// External reports whether the database lives on the server named by
// NETGUARDIAN_TEST_DATABASE_URL rather than on a cluster of the test's own.
func (s *Server) External() bool { return s.c == nil }

// Stop stops the server (a fast shutdown: connections are cut), as when
// the database goes away. Only a server from StartCluster can stop.
func (s *Server) Stop() {
	s.t.Helper()
	s.mustOwn("Stop")
	if err := s.c.stop(); err != nil {
		s.t.Fatalf("pgtest: stop: %v", err)
	}
}

// Start starts a stopped server again, on the same port with the same data.
func (s *Server) Start() {
	s.t.Helper()
	s.mustOwn("Start")
	if err := s.c.start(); err != nil {
		s.t.Fatalf("pgtest: start again: %v", err)
	}
}

func (s *Server) mustOwn(what string) {
	s.t.Helper()
	if s.c == nil || s.shared {
		s.t.Fatalf("pgtest: %s needs a cluster of the test's own: use pgtest.StartCluster", what)
	}
}

var (
	sharedOnce sync.Once
	sharedC    *cluster
	sharedErr  error
)

// Start returns a fresh, empty database for t, dropped when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	if u := os.Getenv(EnvURL); u != "" {
		return newDatabase(t, u, nil, false)
	}
	sharedOnce.Do(func() { sharedC, sharedErr = newCluster() })
	if sharedErr != nil {
		t.Fatalf("pgtest: %v", sharedErr)
	}
	return newDatabase(t, sharedC.adminURL(), sharedC, true)
}

// StartCluster starts a cluster for t alone (stopped and removed when t
// ends) and returns a fresh database on it. Its Stop and Start work.
func StartCluster(t testing.TB) *Server {
	t.Helper()
	c, err := newCluster()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(c.destroy)
	return newDatabase(t, c.adminURL(), c, false)
}

// Shutdown stops and removes the shared cluster, if one was started.
func Shutdown() {
	if sharedC != nil {
		sharedC.destroy()
	}
}

// Cluster is a throwaway cluster for a program rather than a test.
type Cluster struct{ c *cluster }

// NewCluster starts a throwaway cluster like Start's (initdb in a temporary
// directory, fsync off, 127.0.0.1 on a free port). Close removes it.
func NewCluster() (*Cluster, error) {
	c, err := newCluster()
	if err != nil {
		return nil, err
	}
	return &Cluster{c}, nil
}

// AdminURL is a postgres:// URL of the superuser on the database
// `postgres`, from which to CREATE DATABASE.
func (c *Cluster) AdminURL() string { return c.c.adminURL() }

// Close stops the server and removes its directory.
func (c *Cluster) Close() { c.c.destroy() }

// newDatabase creates a database named ng_test_<random> through adminURL.
func newDatabase(t testing.TB, adminURL string, c *cluster, shared bool) *Server {
	t.Helper()
	u, err := url.Parse(adminURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("pgtest: %s must be a postgres:// URL", EnvURL)
	}
	name := "ng_test_" + randomHex(6)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		t.Fatalf("pgtest: connect to %s: %v", redact(u), err)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c != nil && !c.running() {
			return // a stopped cluster is removed as a whole
		}
		admin, err := pgx.Connect(ctx, adminURL)
		if err != nil {
			t.Logf("pgtest: drop database %s: %v", name, err)
			return
		}
		defer admin.Close(context.Background())
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("pgtest: drop database %s: %v", name, err)
		}
	})
	du := *u
	du.Path = "/" + name
	pw, _ := u.User.Password()
	return &Server{t: t, url: du.String(), dbname: name, password: pw, c: c, shared: shared}
}

func redact(u *url.URL) string {
	r := *u
	if _, ok := r.User.Password(); ok {
		r.User = url.UserPassword(r.User.Username(), "xxxxx")
	}
	return r.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ---- clusters ----------------------------------------------------------------

// cluster is a postgres server run by this process.
type cluster struct {
	bin      string // directory of initdb and postgres
	dir      string // temporary root: data/, sock/, postgres.log
	port     int
	password string
	cred     *syscall.Credential // who runs initdb and postgres (when we are root)

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// FindBinaries returns the directory holding initdb and postgres: the
// highest /usr/lib/postgresql/*/bin, else the directory of initdb on PATH.
func FindBinaries() (string, error) { return findBinaries("/usr/lib/postgresql/*/bin") }

func findBinaries(pattern string) (string, error) {
	dirs, _ := filepath.Glob(pattern)
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		d := filepath.Dir(p)
		if isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", errors.New("PostgreSQL server binaries (initdb, postgres) not found in /usr/lib/postgresql/*/bin or on PATH: " +
		"install the Debian package `postgresql` (scripts/install-deps.sh does), or set " + EnvURL +
		" to a postgres:// URL of a server where the test role may CREATE DATABASE")
}

func version(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

func newCluster() (*cluster, error) {
	bin, err := FindBinaries()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "ng-pgtest-")
	if err != nil {
		return nil, err
	}
	c := &cluster{bin: bin, dir: dir, password: randomHex(12)}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(dir)
		}
	}()
	if os.Geteuid() == 0 {
		// initdb refuses to run as root.
		cred, err := unprivileged()
		if err != nil {
			return nil, err
		}
		c.cred = cred
	}
	if err := os.Mkdir(filepath.Join(dir, "sock"), 0o700); err != nil {
		return nil, err
	}
	pwfile := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(c.password+"\n"), 0o600); err != nil {
		return nil, err
	}
	if c.cred != nil {
		for _, p := range []string{dir, filepath.Join(dir, "sock"), pwfile} {
			if err := os.Chown(p, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
				return nil, fmt.Errorf("chown %s: %w", p, err)
			}
		}
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", filepath.Join(dir, "data"), "-U", "postgres",
		"--pwfile="+pwfile, "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	initdb.Env = append(os.Environ(), "LC_ALL=C")
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	_ = os.Remove(pwfile)
	if c.port, err = freePort(); err != nil {
		return nil, err
	}
	if err := c.start(); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// unprivileged returns the credentials of the postgres system user, or of
// nobody.
func unprivileged() (*syscall.Credential, error) {
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 == nil && err2 == nil {
			return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
		}
	}
	return nil, errors.New("running as root, and there is neither a `postgres` nor a `nobody` user to run initdb as")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (c *cluster) adminURL() string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword("postgres", c.password),
		Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)), Path: "/postgres", RawQuery: "sslmode=disable"}
	return u.String()
}

func (c *cluster) running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cmd != nil
}

// start runs postgres and waits until it accepts connections.
func (c *cluster) start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd != nil {
		return errors.New("already running")
	}
	logPath := filepath.Join(c.dir, "postgres.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(c.bin, "postgres"), "-D", filepath.Join(c.dir, "data"),
		"-p", strconv.Itoa(c.port), "-k", filepath.Join(c.dir, "sock"),
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "max_connections=300", "-c", "shared_buffers=128MB",
		"-c", "max_wal_size=4GB", "-c", "checkpoint_timeout=30min", "-c", "log_min_messages=warning",
		"-c", "logging_collector=off")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	// SIGINT is a fast shutdown: postgres ends with the test binary even
	// when nobody calls Shutdown.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Pdeathsig: syscall.SIGINT, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, c.adminURL())
		if err == nil {
			_ = conn.Close(ctx)
			cancel()
			break
		}
		cancel()
		select {
		case <-exited:
			return fmt.Errorf("postgres exited at start (port %d):\n%s", c.port, tail(logPath))
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("postgres did not accept connections within 60s: %v\n%s", err, tail(logPath))
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.cmd, c.exited = cmd, exited
	return nil
}

// stop shuts postgres down (fast: open connections are cut).
func (c *cluster) stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return nil
	}
	_ = c.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
	c.cmd = nil
	return nil
}

func (c *cluster) destroy() {
	_ = c.stop()
	_ = os.RemoveAll(c.dir)
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return strings.TrimSpace(string(b))
}
