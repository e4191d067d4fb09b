package plugintest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/netguardian/netguardian/core/config"
	"github.com/netguardian/netguardian/core/host"
	"github.com/netguardian/netguardian/sdk"
)

// TB is the part of testing.TB the harness uses. *testing.T and
// *testing.B satisfy it. As with testing.T, Fatalf must not return (it
// ends the calling goroutine with runtime.Goexit).
type TB interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Cleanup(func())
	TempDir() string
	Name() string
}

var _ TB = testing.TB(nil)

// DefaultDeadline bounds one Detect call when a suite sets no Deadline.
const DefaultDeadline = 5 * time.Second

// Build compiles the main package in directory pkgDir (for a plugin's own
// test, "."), with the go command of PATH, into t.TempDir(), and returns
// the binary's path. The package is built in its own module: its go.mod
// decides which sdk it uses, as it will for the binary users install.
func Build(t TB, pkgDir string) string {
	t.Helper()
	abs, err := filepath.Abs(pkgDir)
	if err != nil {
		t.Fatalf("plugintest.Build: %v", err)
		return ""
	}
	st, err := os.Stat(abs)
	switch {
	case err != nil:
		t.Fatalf("plugintest.Build: %v", err)
		return ""
	case !st.IsDir():
		t.Fatalf("plugintest.Build: %s is not a directory; give the directory of the plugin's main package", pkgDir)
		return ""
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("plugintest.Build needs the go command in PATH: %v", err)
		return ""
	}
	out := filepath.Join(t.TempDir(), filepath.Base(abs))
	cmd := exec.Command(goBin, "build", "-o", out, ".")
	cmd.Dir = abs
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("plugintest.Build: go build %s: %v\n%s", pkgDir, err, msg)
		return ""
	}
	if st, err := os.Stat(out); err != nil || st.Mode()&0o111 == 0 {
		t.Fatalf("plugintest.Build: go build %s made no executable; is it a main package (package main with func main calling sdk.Serve)?", pkgDir)
		return ""
	}
	return out
}

// pluginEnv is the environment the core gives plugins (PATH only) plus env.
func pluginEnv(env []string) []string {
	return append([]string{"PATH=" + os.Getenv("PATH")}, env...)
}

// launch starts the plugin at path through the core's host and stops it
// when t's test ends. Its log lines go to t.Logf.
func launch(t TB, path string, kind sdk.Kind, env []string) (*host.Plugin, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	log := newTBLogger(t)
	p, err := host.Start(ctx, host.Spec{Name: filepath.Base(path), Kind: kind, Path: path, Env: pluginEnv(env)}, log)
	if err != nil {
		return nil, err
	}
	t.Cleanup(p.Stop)
	return p, nil
}

// runtimeFor is what the core sends with Configure, using the defaults of
// netguardian.hcl.
func runtimeFor(kind sdk.Kind) sdk.Runtime {
	rt := sdk.Runtime{Sensor: "plugintest"}
	if kind == sdk.KindCapture {
		rt.BatchSize, rt.FlushInterval = 1024, 100*time.Millisecond
	}
	return rt
}

// Start launches the plugin at path as netguardian does (handshake and
// protocol negotiation, Describe, kind and feature-schema checks), decodes
// cfg against the schema the plugin describes as the core decodes a
// `config { }` block (defaults applied, types checked), and sends
// Configure. env adds "KEY=value" entries to the plugin's environment,
// which otherwise holds only PATH, as in netguardian. The plugin stops
// when t's test ends; any failure fails t.
func Start(t TB, path string, kind sdk.Kind, cfg map[string]any, env ...string) *host.Plugin {
	t.Helper()
	p, err := launch(t, path, kind, env)
	if err != nil {
		t.Fatalf("plugintest: %v", err)
		return nil
	}
	js, err := ConfigJSON(kind, p.Info().Config, cfg)
	if err != nil {
		t.Fatalf("plugintest: %v", err)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Configure(ctx, sdk.Config{JSON: js, Runtime: runtimeFor(kind)}); err != nil {
		t.Fatalf("plugintest: %v (config %s)", err, js)
		return nil
	}
	return p
}

// ConfigJSON renders values as the `config { }` block of a kind plugin,
// decodes it against schema with the core's own decoder (core/config), and
// returns the JSON the plugin's Configure receives: defaults applied,
// durations checked and normalized. Values are Go values as in a config
// file: strings, numbers, bools, time.Duration or duration strings,
// []string, []float64, map[string]string. Mistakes (an attribute the
// schema lacks, a wrong type, a missing required attribute) are errors
// worded as netguardian validate words them.
func ConfigJSON(kind sdk.Kind, schema sdk.Schema, values map[string]any) ([]byte, error) {
	names := make([]string, 0, len(values))
	for k := range values {
		names = append(names, k)
	}
	sort.Strings(names)
	var src bytes.Buffer
	fmt.Fprintf(&src, "%s \"plugintest\" {\n  plugin = \"plugintest\"\n  config {\n", kind)
	for _, k := range names {
		if !hclsyntaxValidIdentifier(k) {
			return nil, fmt.Errorf("config attribute %q: not a valid HCL attribute name", k)
		}
		v, err := hclValue(values[k])
		if err != nil {
			return nil, fmt.Errorf("config attribute %q: %w", k, err)
		}
		fmt.Fprintf(&src, "    %s = %s\n", k, v)
	}
	src.WriteString("  }\n}\n")
	cfg, diags := config.Parse("plugintest.hcl", src.Bytes())
	if diags.HasErrors() {
		return nil, fmt.Errorf("config block:\n%s\n%s", src.Bytes(), diagText(diags))
	}
	blocks := cfg.Plugins()
	if len(blocks) != 1 {
		return nil, fmt.Errorf("config block: %d plugin blocks parsed from\n%s", len(blocks), src.Bytes())
	}
	js, diags := config.DecodePluginConfig(blocks[0], schema)
	if diags.HasErrors() {
		return nil, fmt.Errorf("config %s is refused by the core:\n%s", compactJSON(values), diagText(diags))
	}
	return js, nil
}

func hclsyntaxValidIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z':
		case i > 0 && (r == '-' || r >= '0' && r <= '9'):
		default:
			return false
		}
	}
	return true
}

// hclValue writes a Go config value as an HCL expression. JSON is valid
// HCL for the values a config holds (strings, numbers, bools, null, lists,
// objects), once template sequences in strings are escaped.
func hclValue(v any) (string, error) {
	switch d := v.(type) {
	case time.Duration:
		v = d.String()
	case []time.Duration:
		s := make([]string, len(d))
		for i, x := range d {
			s[i] = x.String()
		}
		v = s
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	s := strings.TrimSpace(b.String())
	s = strings.ReplaceAll(s, "${", "$${")
	s = strings.ReplaceAll(s, "%{", "%%{")
	return s, nil
}

func compactJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// diagText words diagnostics without the file positions of the generated
// block, which mean nothing to the test's author.
func diagText(diags hcl.Diagnostics) string {
	var b strings.Builder
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		fmt.Fprintf(&b, "  %s: %s\n", d.Summary, d.Detail)
	}
	return strings.TrimRight(b.String(), "\n")
}

// Detector is a started and configured detector plugin.
type Detector struct {
	*host.Plugin
	t TB
	// Deadline bounds each Detect call (DefaultDeadline when zero).
	Deadline time.Duration
}

// StartDetector starts and configures the detector at path (see Start).
func StartDetector(t TB, path string, cfg map[string]any, env ...string) *Detector {
	t.Helper()
	p := Start(t, path, sdk.KindDetector, cfg, env...)
	if p == nil {
		return nil
	}
	return &Detector{Plugin: p, t: t}
}

// Detect sends b to the detector as the pipeline does and returns its
// alerts; any error fails the test. The batch is projected onto the
// features the detector asked for, in its order; the answer is checked by
// host.CheckAlerts; the alerts get the fields the core fills in (Detector,
// Src, Window, Start, End, and severity medium when none is set).
func (d *Detector) Detect(b *sdk.FeatureBatch) []sdk.Alert {
	d.t.Helper()
	alerts, err := d.TryDetect(b)
	if err != nil {
		d.t.Errorf("plugintest: Detect of a %d-row batch: %v", len(b.Rows), err)
	}
	return alerts
}

// TryDetect is Detect returning the error instead of failing the test.
func (d *Detector) TryDetect(b *sdk.FeatureBatch) ([]sdk.Alert, error) {
	info := d.Info()
	pb, err := project(b, requestedFeatures(info))
	if err != nil {
		return nil, err
	}
	deadline := d.Deadline
	if deadline <= 0 {
		deadline = DefaultDeadline
	}
	alerts, err := d.Plugin.Detect(context.Background(), pb, deadline)
	if err != nil {
		return nil, err
	}
	fillAlerts(info.Name, pb, alerts)
	return alerts, nil
}

// requestedFeatures is what the pipeline sends a detector: the features it
// listed, or all of them when it listed none.
func requestedFeatures(info sdk.Info) []string {
	if len(info.Features) == 0 {
		return sdk.Features
	}
	return info.Features
}

// requestedWindows is what the pipeline subscribes a detector to.
func requestedWindows(info sdk.Info) []time.Duration {
	if len(info.Windows) == 0 {
		return []time.Duration{30 * time.Second, 180 * time.Second}
	}
	return info.Windows
}

// project returns b with only the named features, in that order, as the
// pipeline sends a detector what it asked for.
func project(b *sdk.FeatureBatch, names []string) (*sdk.FeatureBatch, error) {
	if slices.Equal(b.Names, names) {
		return b, nil
	}
	idx := make([]int, len(names))
	for i, n := range names {
		if idx[i] = b.Index(n); idx[i] < 0 {
			return nil, fmt.Errorf("the batch has no feature %q, which the detector asks for (build fixtures with plugintest.Batch, which has them all)", n)
		}
	}
	out := &sdk.FeatureBatch{Sensor: b.Sensor, Window: b.Window, SchemaVersion: b.SchemaVersion, Names: names, Rows: make([]sdk.FeatureRow, len(b.Rows))}
	for r, row := range b.Rows {
		v := make([]float64, len(names))
		for i, j := range idx {
			if j >= len(row.Values) {
				return nil, fmt.Errorf("row %d has %d values for %d feature names", r, len(row.Values), len(b.Names))
			}
			v[i] = row.Values[j]
		}
		out.Rows[r] = sdk.FeatureRow{Src: row.Src, Start: row.Start, End: row.End, Flags: row.Flags, Values: v, Sensor: row.Sensor}
	}
	return out, nil
}

// fillAlerts sets the fields the pipeline fills in from the alert's row.
func fillAlerts(detector string, b *sdk.FeatureBatch, alerts []sdk.Alert) {
	for i := range alerts {
		a := &alerts[i]
		row := b.Rows[a.Row] // CheckAlerts has checked the row
		a.Detector, a.Sensor = detector, b.Sensor
		a.Src, a.Window, a.Start, a.End = row.Src, b.Window, row.Start, row.End
		if a.Severity == "" {
			a.Severity = sdk.SeverityMedium
		}
	}
}
