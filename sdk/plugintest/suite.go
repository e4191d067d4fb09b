package plugintest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/netguardian/netguardian/core/host"
	"github.com/netguardian/netguardian/sdk"
)

// CheckDescribe returns what is wrong with a plugin's Describe answer for
// a plugin of kind kind (nil when nothing is): a missing name or version,
// another kind, a feature schema newer than this SDK's, config attributes
// with no name, a duplicate name, an unknown type, a default of the wrong
// type or a required attribute with a default; for detectors, feature
// names the SDK does not know (with the known ones), window sizes the core
// does not compute, and a missing, empty or duplicate label.
func CheckDescribe(info sdk.Info, kind sdk.Kind) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if strings.TrimSpace(info.Name) == "" {
		bad("Describe gives no Name")
	}
	if strings.TrimSpace(info.Version) == "" {
		bad("Describe gives no Version (it is shown in `netguardian plugins` and /api/plugins)")
	}
	if info.Kind != kind {
		bad("Describe gives kind %q; want %q", info.Kind, kind)
	}
	if info.FeatureSchemaVersion > sdk.FeatureSchemaVersion {
		bad("Describe claims feature schema version %d; this SDK knows version %d", info.FeatureSchemaVersion, sdk.FeatureSchemaVersion)
	}
	seen := map[string]bool{}
	for i, a := range info.Config {
		switch {
		case a.Name == "":
			bad("config attribute %d has no name", i)
			continue
		case !hclsyntaxValidIdentifier(a.Name):
			bad("config attribute %q: not a valid HCL attribute name (letters, digits, _ and -, not starting with a digit or -)", a.Name)
		case seen[a.Name]:
			bad("config attribute %q is listed twice", a.Name)
		}
		seen[a.Name] = true
		if !a.Type.Valid() {
			bad("config attribute %q has unknown type %q (want one of string, number, bool, duration, list(string), list(number), map(string))", a.Name, a.Type)
			continue
		}
		if a.Required && a.Default != nil {
			bad("config attribute %q is required and has a default %v; a required attribute cannot have one", a.Name, a.Default)
		}
		if a.Default != nil {
			if err := checkDefault(a); err != nil {
				bad("config attribute %q: %v", a.Name, err)
			}
		}
	}
	if kind == sdk.KindDetector {
		checkDetectorInfo(info, bad)
	}
	return errors.Join(errs...)
}

func checkDetectorInfo(info sdk.Info, bad func(string, ...any)) {
	seen := map[string]bool{}
	for _, f := range info.Features {
		switch {
		case !sdk.KnownFeature(f):
			bad("Describe asks for unknown feature %q; feature schema version %d knows: %s", f, sdk.FeatureSchemaVersion, strings.Join(sdk.Features, ", "))
		case seen[f]:
			bad("Describe asks for feature %q twice", f)
		}
		seen[f] = true
	}
	var ws []time.Duration
	for _, w := range info.Windows {
		switch {
		case !slices.Contains(sdk.WindowSizes, w):
			bad("Describe subscribes to %s windows; the core computes %v", w, sdk.WindowSizes)
		case slices.Contains(ws, w):
			bad("Describe subscribes to %s windows twice", w)
		}
		ws = append(ws, w)
	}
	if len(info.Labels) == 0 {
		bad("Describe declares no labels; the core rejects alerts whose label was not declared, so list every label the detector may raise")
	}
	labels := map[string]bool{}
	for i, l := range info.Labels {
		switch {
		case strings.TrimSpace(l) == "":
			bad("label %d is empty", i)
		case labels[l]:
			bad("label %q is declared twice", l)
		}
		labels[l] = true
	}
}

// checkDefault checks a default as it arrives from the plugin (through
// JSON): a string, float64, bool, or a list or map of them.
func checkDefault(a sdk.Attribute) error {
	d := a.Default
	want := func(what string) error { return fmt.Errorf("default %v (%T) is not a %s", d, d, what) }
	switch a.Type {
	case sdk.TypeString:
		if _, ok := d.(string); !ok {
			return want("string")
		}
	case sdk.TypeDuration:
		s, ok := d.(string)
		if !ok {
			return want("duration string such as \"5s\"")
		}
		if _, err := time.ParseDuration(s); err != nil {
			return fmt.Errorf("default %q is not a duration: %v", s, err)
		}
	case sdk.TypeNumber:
		if _, ok := d.(float64); !ok {
			return want("number")
		}
	case sdk.TypeBool:
		if _, ok := d.(bool); !ok {
			return want("bool")
		}
	case sdk.TypeListString, sdk.TypeListNumber:
		list, ok := d.([]any)
		if !ok {
			return want("list")
		}
		for _, x := range list {
			_, isStr := x.(string)
			_, isNum := x.(float64)
			if (a.Type == sdk.TypeListString && !isStr) || (a.Type == sdk.TypeListNumber && !isNum) {
				return fmt.Errorf("default %v: element %v (%T) does not fit %s", d, x, x, a.Type)
			}
		}
	case sdk.TypeMapString:
		m, ok := d.(map[string]any)
		if !ok {
			return want("map")
		}
		for k, x := range m {
			if _, ok := x.(string); !ok {
				return fmt.Errorf("default %v: %q is %v (%T), not a string", d, k, x, x)
			}
		}
	}
	return nil
}

// DetectorSuite says how RunDetector exercises a detector.
type DetectorSuite struct {
	// GoodConfig is the config block the fixtures run with (nil: empty
	// block, defaults only). Values are as in ConfigJSON.
	GoodConfig map[string]any
	// BadConfigs must each be refused: by the core's decoding against the
	// schema (logged), or by the plugin's Configure with an error message.
	// Each is tried on the running plugin before GoodConfig.
	BadConfigs []map[string]any
	// Deadline bounds each Detect call (DefaultDeadline when zero).
	Deadline time.Duration
	// Env adds "KEY=value" entries to the plugin's environment.
	Env []string
	// Fixtures are the author's own batches, run after StandardFixtures
	// and checked the same way, plus their Check.
	Fixtures []Fixture
	// LargeRows is the size of the large standard fixture (default 10000).
	LargeRows int
}

// Result is what RunDetector saw.
type Result struct {
	// Info is the detector's Describe answer after Configure.
	Info sdk.Info
	// Alerts holds each fixture's alerts, by fixture name; a fixture
	// whose Detect failed has none.
	Alerts map[string][]sdk.Alert
	// Fixtures lists the fixtures in the order they ran.
	Fixtures []Fixture
}

// RunDetector checks the detector binary at path: it must start through
// the core's host (handshake, protocol version, kind, feature schema),
// describe itself correctly (CheckDescribe, before and after Configure,
// with the same kind and schema), refuse every BadConfig with a message
// and without dying, accept GoodConfig, and answer every fixture
// (StandardFixtures for the windows it subscribes to, then s.Fixtures)
// within the deadline, without crashing or being restarted, with alerts
// host.CheckAlerts accepts. Each problem is reported on t; problems that
// leave nothing more to test (it does not start, a Describe the core would
// refuse, GoodConfig refused) stop the test with Fatalf.
func RunDetector(t TB, path string, s DetectorSuite) *Result {
	t.Helper()
	p, err := launch(t, path, sdk.KindDetector, s.Env)
	if err != nil {
		t.Fatalf("plugintest: the detector did not start: %v", err)
		return nil
	}
	first := p.Info()
	if err := CheckDescribe(first, sdk.KindDetector); err != nil {
		t.Fatalf("plugintest: Describe:\n%v", indent(err))
		return nil
	}
	ctx := context.Background()
	conn, err := p.Conn()
	if err != nil {
		t.Fatalf("plugintest: %v", err)
		return nil
	}
	for i, bc := range s.BadConfigs {
		js, err := ConfigJSON(sdk.KindDetector, first.Config, bc)
		if err != nil {
			t.Logf("plugintest: bad config %d is refused by the core before it reaches the plugin: %v", i, err)
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = conn.Configure(cctx, sdk.Config{JSON: js, Runtime: runtimeFor(sdk.KindDetector)})
		cancel()
		switch {
		case err != nil && host.Crashed(conn):
			t.Fatalf("plugintest: bad config %d %s: the plugin exited; Configure must return an error saying what is wrong", i, js)
			return nil
		case err == nil:
			t.Errorf("plugintest: bad config %d %s: Configure accepted it; it must return an error saying what is wrong", i, js)
		case strings.Contains(err.Error(), "Configure panicked"):
			t.Errorf("plugintest: bad config %d %s: Configure panicked instead of returning an error: %v", i, js, err)
		case strings.TrimSpace(err.Error()) == "":
			t.Errorf("plugintest: bad config %d %s: Configure refused it with an empty message; say what is wrong", i, js)
		default:
			t.Logf("plugintest: bad config %d refused: %v", i, err)
		}
	}
	js, err := ConfigJSON(sdk.KindDetector, first.Config, s.GoodConfig)
	if err != nil {
		t.Fatalf("plugintest: GoodConfig: %v", err)
		return nil
	}
	if err := p.Configure(ctx, sdk.Config{JSON: js, Runtime: runtimeFor(sdk.KindDetector)}); err != nil {
		t.Fatalf("plugintest: GoodConfig %s: %v", js, err)
		return nil
	}
	info := p.Info()
	if err := CheckDescribe(info, sdk.KindDetector); err != nil {
		t.Fatalf("plugintest: Describe after Configure:\n%v", indent(err))
		return nil
	}
	if info.Name != first.Name || info.Kind != first.Kind || !reflect.DeepEqual(info.Config, first.Config) {
		t.Errorf("plugintest: Describe changed its name, kind or config schema after Configure; only features, windows and labels may depend on the config")
	}

	d := &Detector{Plugin: p, t: t, Deadline: s.Deadline}
	if d.Deadline <= 0 {
		d.Deadline = DefaultDeadline
	}
	rows := s.LargeRows
	if rows <= 0 {
		rows = 10000
	}
	res := &Result{Info: info, Alerts: map[string][]sdk.Alert{}}
	res.Fixtures = append(StandardFixtures(requestedWindows(info), rows), s.Fixtures...)
	for _, f := range res.Fixtures {
		if f.Batch == nil {
			t.Errorf("plugintest: fixture %q has no batch", f.Name)
			continue
		}
		restarts := p.Restarts()
		start := time.Now()
		alerts, err := d.TryDetect(f.Batch)
		took := time.Since(start)
		if n := p.Restarts() - restarts; n > 0 {
			t.Errorf("plugintest: fixture %q: the plugin process died and was restarted %d time(s); a detector must not exit on any input", f.Name, n)
		}
		if err != nil {
			t.Errorf("plugintest: fixture %q (%d rows, %s windows): %v", f.Name, len(f.Batch.Rows), f.Batch.Window, err)
			continue
		}
		t.Logf("plugintest: fixture %q: %d rows, %d alerts in %s", f.Name, len(f.Batch.Rows), len(alerts), took.Round(time.Millisecond))
		res.Alerts[f.Name] = alerts
		if f.Check != nil {
			f.Check(t, alerts)
		}
	}
	if c, err := p.Conn(); err != nil || c.Exited() || c.Ping() != nil {
		t.Errorf("plugintest: the plugin is not alive after the fixtures (%v)", err)
	} else if _, err := c.Stats(ctx); err != nil {
		t.Errorf("plugintest: Stats: %v", err)
	}
	return res
}

func indent(err error) string {
	return "  " + strings.ReplaceAll(err.Error(), "\n", "\n  ")
}
