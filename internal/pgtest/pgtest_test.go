package pgtest

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) {
	code := m.Run()
	Shutdown()
	os.Exit(code)
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func TestStartGivesFreshDatabases(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.Database() == b.Database() || a.URL() == b.URL() {
		t.Fatalf("two Starts gave the same database %q", a.Database())
	}
	ca := connect(t, a.URL())
	var name string
	var tables int
	if err := ca.QueryRow(t.Context(), "SELECT current_database(), (SELECT count(*) FROM pg_tables WHERE schemaname = 'public')").Scan(&name, &tables); err != nil {
		t.Fatal(err)
	}
	if name != a.Database() || tables != 0 {
		t.Errorf("connected to %q with %d tables; want %q, empty", name, tables, a.Database())
	}
	if _, err := ca.Exec(t.Context(), "CREATE TABLE only_in_a (x int)"); err != nil {
		t.Fatal(err)
	}
	cb := connect(t, b.URL())
	var n int
	if err := cb.QueryRow(t.Context(), "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'").Scan(&n); err != nil || n != 0 {
		t.Errorf("database b sees a's table: %d, %v", n, err)
	}
	if !a.External() && (a.Password() == "" || !strings.Contains(a.URL(), a.Password())) {
		t.Errorf("a throwaway cluster's URL %q should carry its password", a.URL())
	}
}

func TestDatabaseDroppedAtCleanup(t *testing.T) {
	var name, url string
	t.Run("inner", func(t *testing.T) {
		s := Start(t)
		name, url = s.Database(), s.URL()
	})
	admin := connect(t, strings.Replace(url, "/"+name, "/postgres", 1))
	var n int
	if err := admin.QueryRow(t.Context(), "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("database %s still exists after its test ended", name)
	}
}

func TestStopStart(t *testing.T) {
	if _, err := FindBinaries(); err != nil {
		t.Fatalf("%v", err)
	}
	s := StartCluster(t)
	c := connect(t, s.URL())
	if _, err := c.Exec(t.Context(), "CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	port := s.Port()
	s.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := pgx.Connect(ctx, s.URL()); err == nil {
		t.Fatal("connected to a stopped server")
	}
	if err := c.Ping(ctx); err == nil {
		t.Error("a connection to a stopped server still answers")
	}
	s.Start()
	if s.Port() != port {
		t.Errorf("port changed from %d to %d", port, s.Port())
	}
	c2 := connect(t, s.URL())
	var x int
	if err := c2.QueryRow(t.Context(), "SELECT x FROM kept").Scan(&x); err != nil || x != 42 {
		t.Errorf("after restart: x = %d, %v; want the data kept", x, err)
	}
}

func TestFindBinaries(t *testing.T) {
	root := t.TempDir()
	for _, v := range []string{"9.6", "15", "13"} {
		d := root + "/" + v + "/bin"
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, b := range []string{"initdb", "postgres"} {
			if err := os.WriteFile(d+"/"+b, []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got, err := findBinaries(root + "/*/bin"); err != nil || got != root+"/15/bin" {
		t.Errorf("findBinaries = %q, %v; want the highest version, %s/15/bin", got, err, root)
	}
	t.Setenv("PATH", t.TempDir())
	_, err := findBinaries(t.TempDir() + "/*/bin")
	if err == nil || !strings.Contains(err.Error(), "`postgresql`") || !strings.Contains(err.Error(), EnvURL) {
		t.Errorf("without binaries: %v; want an error naming the Debian package postgresql and %s", err, EnvURL)
	}
}

// TestExternalServer uses a database of the test's cluster as if it were
// the server named by NETGUARDIAN_TEST_DATABASE_URL.
func TestExternalServer(t *testing.T) {
	host := Start(t)
	t.Setenv(EnvURL, host.URL())
	var name string
	t.Run("inner", func(t *testing.T) {
		s := Start(t)
		name = s.Database()
		if !s.External() || s.Database() == host.Database() {
			t.Fatalf("external: %v, database %s", s.External(), s.Database())
		}
		connect(t, s.URL())
	})
	c := connect(t, host.URL())
	var n int
	if err := c.QueryRow(t.Context(), "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil || n != 0 {
		t.Errorf("external test database %s left behind (%d, %v)", name, n, err)
	}
}

func TestNewClusterForPrograms(t *testing.T) {
	c, err := NewCluster()
	if err != nil {
		t.Fatal(err)
	}
	dir := c.c.dir
	admin := connect(t, c.AdminURL())
	if _, err := admin.Exec(t.Context(), "CREATE DATABASE program_db"); err != nil {
		t.Fatalf("the admin URL cannot create a database: %v", err)
	}
	admin.Close(t.Context())
	c.Close()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("cluster directory %s still there after Close (%v)", dir, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, c.AdminURL()); err == nil {
		conn.Close(ctx)
		t.Error("connected to a closed cluster")
	}
}
