package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/netguardian/netguardian/core/config"
)

// The tests of this package run the real binaries: TestMain builds the
// netguardian command and the plugins into a temporary directory.
var (
	binDir    string // holds netguardian
	pluginDir string // holds the plugins
	repoRoot  = filepath.Join("..", "..")
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ng-cmd-test")
	if err != nil {
		panic(err)
	}
	binDir, pluginDir = dir, filepath.Join(dir, "plugins")
	builds := [][2]string{
		{filepath.Join(binDir, "netguardian"), "."},
		{filepath.Join(pluginDir, "capture-pcap"), "../../plugins/capture-pcap"},
		{filepath.Join(pluginDir, "testplugin"), "../../core/host/testdata/testplugin"},
		{filepath.Join(pluginDir, "detector-portscan"), "../../examples/detector-portscan"},
		{filepath.Join(pluginDir, "detector-xgboost"), "../../plugins/detector-xgboost"},
	}
	for _, b := range builds {
		if out, err := exec.Command("go", "build", "-o", b[0], b[1]).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", b[1], err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// writeConfig writes an HCL config whose plugin_dir is the test's plugins.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "netguardian.hcl")
	src := fmt.Sprintf("sensor {\n  name = \"test\"\n  plugin_dir = %q\n}\n%s", pluginDir, body)
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// run runs the built netguardian binary.
func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "netguardian"), args...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

func abs(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join(repoRoot, rel))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// parseConfigB is parseConfig for benchmarks.
func parseConfigB(b *testing.B, body string) *config.Config {
	b.Helper()
	path := filepath.Join(b.TempDir(), "netguardian.hcl")
	src := fmt.Sprintf("sensor {\n  name = \"test\"\n  plugin_dir = %q\n}\n%s", pluginDir, body)
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		b.Fatal(err)
	}
	cfg, diags := config.Load(path)
	if diags.HasErrors() {
		b.Fatal(diags)
	}
	return cfg
}

// parseConfig parses an in-memory config for in-process sensor tests.
func parseConfig(t *testing.T, body string) *config.Config {
	t.Helper()
	cfg, diags := config.Load(writeConfig(t, body))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return cfg
}

func TestValidateAcceptsTheDefaultConfig(t *testing.T) {
	// Lay out a directory like the repository's: netguardian.hcl, bin/plugins
	// and examples/pcaps, so the default config's relative paths resolve.
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join(repoRoot, "netguardian.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "netguardian.hcl"), src, 0o644)
	os.MkdirAll(filepath.Join(dir, "bin"), 0o755)
	os.MkdirAll(filepath.Join(dir, "examples"), 0o755)
	os.Symlink(pluginDir, filepath.Join(dir, "bin", "plugins"))
	os.Symlink(abs(t, "examples/pcaps"), filepath.Join(dir, "examples", "pcaps"))
	cmd := exec.Command(filepath.Join(binDir, "netguardian"), "validate", "-config", "netguardian.hcl")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "netguardian.hcl: OK (1 capture") {
		t.Fatalf("validate: %v\n%s", err, out)
	}
}

// Each broken config gives exactly one error, at file:line:col.
func TestValidateDiagnostics(t *testing.T) {
	cases := []struct {
		name, body, where, message string
	}{
		{"misspelled plugin attribute", `
capture "replay" {
  plugin = "capture-pcap"
  config {
    files = ["x.pcap"]
    speeed = 1.0
  }
}`, ":10:5: error: Unsupported argument", `Did you mean "speed"?`},
		{"string where a number belongs", `
capture "replay" {
  plugin = "capture-pcap"
  config {
    files = ["x.pcap"]
    speed = "fast"
  }
}`, ":10:13: error: Incorrect attribute value type", `Inappropriate value for attribute "speed": a number is required`},
		{"missing required attribute", `
detector "test" {
  plugin = "testplugin"
  config {
    crash_on_call = 0
  }
}`, ":8:3: error: Missing required argument", `requires the argument "mode"`},
		{"missing plugin binary", `
capture "replay" {
  plugin = "capture-nonexistent"
}`, ":7:12: error: Plugin not found", `no "capture-nonexistent" in plugin_dir`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeConfig(t, c.body)
			_, stderr, code := run(t, "validate", "-config", path)
			if code != 1 {
				t.Fatalf("exit code %d, want 1\n%s", code, stderr)
			}
			if n := strings.Count(stderr, ": error: "); n != 1 {
				t.Fatalf("%d errors, want exactly 1:\n%s", n, stderr)
			}
			if !strings.Contains(stderr, path+c.where) || !strings.Contains(stderr, c.message) {
				t.Fatalf("want %q and %q in:\n%s", path+c.where, c.message, stderr)
			}
		})
	}
}

func TestPluginsListsKindVersionAndHash(t *testing.T) {
	out, stderr, code := run(t, "plugins", "-dir", pluginDir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	hashOut, _, _ := run(t, "plugins", "hash", filepath.Join(pluginDir, "capture-pcap"))
	sum := strings.Trim(strings.TrimPrefix(strings.TrimSpace(hashOut), "sha256 = "), `"`)
	if len(sum) != 64 {
		t.Fatalf("plugins hash printed %q", hashOut)
	}
	for _, want := range []string{"capture-pcap", "capture", sum, "testplugin", "detector", "files", "list(string)"} {
		if !strings.Contains(out, want) {
			t.Errorf("plugins output lacks %q:\n%s", want, out)
		}
	}
}

func TestChangedBinaryRefusesToStart(t *testing.T) {
	path := writeConfig(t, `
capture "replay" {
  plugin = "capture-pcap"
  sha256 = "`+strings.Repeat("ab", 32)+`"
  config {
    files = ["x.pcap"]
  }
}`)
	_, stderr, code := run(t, "validate", "-config", path)
	if code != 1 || !strings.Contains(stderr, "checksum mismatch") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
}

// The core collects at GOGC=50 unless the environment says otherwise.
func TestGCDefault(t *testing.T) {
	current := func() int {
		p := debug.SetGCPercent(100)
		debug.SetGCPercent(p)
		return p
	}
	before := current()
	t.Setenv("GOGC", "")
	os.Unsetenv("GOGC")
	restore := setGCDefault()
	if got := current(); got != defaultGCPercent {
		t.Errorf("GC percent %d without GOGC, want %d", got, defaultGCPercent)
	}
	restore()
	if got := current(); got != before {
		t.Errorf("restore left GC percent %d, want %d", got, before)
	}
	t.Setenv("GOGC", "300")
	debug.SetGCPercent(300) // what the runtime read from the environment
	defer debug.SetGCPercent(before)
	restore = setGCDefault()
	if got := current(); got != 300 {
		t.Errorf("GC percent %d with GOGC=300, want it left alone", got)
	}
	restore()
}
