package plugintest_test

import (
	"encoding/json"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netguardian/netguardian/sdk"
	"github.com/netguardian/netguardian/sdk/plugintest"
)

type exampleConfig struct {
	Model    string        `ng:"model,required" help:"path of the model"`
	MinScore float64       `ng:"min_score"`
	Timeout  time.Duration `ng:"timeout"`
	Windows  []float64     `ng:"windows"`
	Tags     []string      `ng:"tags"`
	Labels   map[string]string
}

func TestConfigJSONDecodesLikeTheCore(t *testing.T) {
	schema := sdk.SchemaOf(exampleConfig{MinScore: 0.5, Timeout: 90 * time.Second})
	js, err := plugintest.ConfigJSON(sdk.KindDetector, schema, map[string]any{
		"model": "m-${x}-%{y}.json", "timeout": 2 * time.Minute, "windows": []float64{30, 180}, "tags": []string{"a", `"b"`},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(js, &got); err != nil {
		t.Fatal(err)
	}
	// Template sequences stay literal, the default is applied, the duration
	// is normalized.
	if got["model"] != "m-${x}-%{y}.json" || got["min_score"] != 0.5 || got["timeout"] != "2m0s" ||
		len(got["windows"].([]any)) != 2 || got["tags"].([]any)[1] != `"b"` {
		t.Fatalf("config JSON = %s", js)
	}
	var cfg exampleConfig
	if err := (sdk.Config{JSON: js}).Decode(&cfg); err != nil || cfg.Timeout != 2*time.Minute || cfg.MinScore != 0.5 {
		t.Fatalf("decoded %+v, %v", cfg, err)
	}

	bad := []struct {
		values map[string]any
		want   string
	}{
		{map[string]any{}, `requires the argument "model"`},
		{map[string]any{"model": "m", "min_scor": 1}, `Did you mean "min_score"?`},
		{map[string]any{"model": "m", "min_score": "high"}, "a number is required"},
		{map[string]any{"model": "m", "timeout": "soon"}, "Invalid duration"},
		{map[string]any{"model": "m", "bad name": 1}, "not a valid HCL attribute name"},
		{map[string]any{"model": "m", "timeout": func() {}}, `config attribute "timeout"`},
	}
	for _, c := range bad {
		if _, err := plugintest.ConfigJSON(sdk.KindDetector, schema, c.values); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ConfigJSON(%v): err = %v, want %q", c.values, err, c.want)
		}
	}
}

func TestCheckDescribe(t *testing.T) {
	good := sdk.Info{Name: "d", Version: "1.0.0", Kind: sdk.KindDetector, FeatureSchemaVersion: sdk.FeatureSchemaVersion,
		Config:   sdk.SchemaOf(exampleConfig{MinScore: 0.5}),
		Features: []string{sdk.FeaturePackets, sdk.FeatureSYN}, Windows: []time.Duration{30 * time.Second}, Labels: []string{"x", "y"}}
	// Defaults arrive through JSON.
	for i := range good.Config {
		if good.Config[i].Default != nil {
			b, _ := json.Marshal(good.Config[i].Default)
			var v any
			_ = json.Unmarshal(b, &v)
			good.Config[i].Default = v
		}
	}
	if err := plugintest.CheckDescribe(good, sdk.KindDetector); err != nil {
		t.Fatalf("a correct Describe: %v", err)
	}
	cases := []struct {
		name string
		edit func(*sdk.Info)
		want string
	}{
		{"no name", func(i *sdk.Info) { i.Name = " " }, "no Name"},
		{"no version", func(i *sdk.Info) { i.Version = "" }, "no Version"},
		{"wrong kind", func(i *sdk.Info) { i.Kind = sdk.KindSink }, `kind "sink"; want "detector"`},
		{"newer schema", func(i *sdk.Info) { i.FeatureSchemaVersion = 99 }, "feature schema version 99"},
		{"unknown feature", func(i *sdk.Info) { i.Features = append(i.Features, "pkts") }, `unknown feature "pkts"`},
		{"duplicate feature", func(i *sdk.Info) { i.Features = append(i.Features, sdk.FeatureSYN) }, `"syn_total" twice`},
		{"odd window", func(i *sdk.Info) { i.Windows = []time.Duration{time.Minute} }, "1m0s windows"},
		{"duplicate window", func(i *sdk.Info) { i.Windows = append(i.Windows, 30*time.Second) }, "30s windows twice"},
		{"no labels", func(i *sdk.Info) { i.Labels = nil }, "declares no labels"},
		{"empty label", func(i *sdk.Info) { i.Labels = []string{"x", ""} }, "label 1 is empty"},
		{"duplicate label", func(i *sdk.Info) { i.Labels = []string{"x", "x"} }, `"x" is declared twice`},
		{"bad type", func(i *sdk.Info) { i.Config = append(i.Config, sdk.Attribute{Name: "n", Type: "int"}) }, `unknown type "int"`},
		{"unnamed attribute", func(i *sdk.Info) { i.Config = append(i.Config, sdk.Attribute{Type: sdk.TypeBool}) }, "has no name"},
		{"bad attribute name", func(i *sdk.Info) { i.Config = append(i.Config, sdk.Attribute{Name: "9x", Type: sdk.TypeBool}) }, "not a valid HCL attribute name"},
		{"duplicate attribute", func(i *sdk.Info) { i.Config = append(i.Config, sdk.Attribute{Name: "model", Type: sdk.TypeString}) }, `"model" is listed twice`},
		{"required with default", func(i *sdk.Info) {
			i.Config = append(i.Config, sdk.Attribute{Name: "r", Type: sdk.TypeString, Required: true, Default: "x"})
		}, "required and has a default"},
		{"default of the wrong type", func(i *sdk.Info) {
			i.Config = append(i.Config, sdk.Attribute{Name: "n", Type: sdk.TypeNumber, Default: "3"})
		}, "is not a number"},
		{"bad duration default", func(i *sdk.Info) {
			i.Config = append(i.Config, sdk.Attribute{Name: "d", Type: sdk.TypeDuration, Default: "3 minutes"})
		}, "is not a duration"},
		{"list default element", func(i *sdk.Info) {
			i.Config = append(i.Config, sdk.Attribute{Name: "l", Type: sdk.TypeListNumber, Default: []any{1.0, "2"}})
		}, "does not fit list(number)"},
	}
	for _, c := range cases {
		info := good
		info.Features = append([]string(nil), good.Features...)
		info.Windows = append([]time.Duration(nil), good.Windows...)
		info.Config = append(sdk.Schema(nil), good.Config...)
		c.edit(&info)
		err := plugintest.CheckDescribe(info, sdk.KindDetector)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
	}
	// Sinks have no labels to declare.
	sink := sdk.Info{Name: "s", Version: "1", Kind: sdk.KindSink}
	if err := plugintest.CheckDescribe(sink, sdk.KindSink); err != nil {
		t.Fatalf("a sink: %v", err)
	}
}

func TestBatch(t *testing.T) {
	b := plugintest.Batch(30*time.Second, map[string]float64{sdk.FeatureSYN: 7}, map[string]float64{sdk.FeaturePackets: 2})
	if len(b.Names) != len(sdk.Features) || b.Names[0] != sdk.Features[0] || b.Window != 30*time.Second || len(b.Rows) != 2 {
		t.Fatalf("batch = %+v", b)
	}
	if v, _ := b.Value(0, sdk.FeatureSYN); v != 7 {
		t.Fatalf("syn of row 0 = %v", v)
	}
	if v, _ := b.Value(0, sdk.FeaturePackets); v != 0 {
		t.Fatalf("an unset feature is %v, want 0", v)
	}
	if b.Rows[1].Src != netip.MustParseAddr("10.0.0.2") || !b.Rows[1].End.Equal(plugintest.FixtureStart.Add(30*time.Second)) {
		t.Fatalf("row 1 = %+v", b.Rows[1])
	}
	b.Names[0] = "changed"
	if sdk.Features[0] == "changed" {
		t.Fatal("Batch shares its names with sdk.Features")
	}
	defer func() {
		r := recover()
		if msg, _ := r.(string); !strings.Contains(msg, `unknown feature "syn"`) || !strings.Contains(msg, sdk.FeatureSYN) {
			t.Fatalf("recovered %v, want a message naming the unknown and the known features", r)
		}
	}()
	plugintest.Batch(5*time.Second, map[string]float64{"syn": 1})
}

func TestStandardFixturesAreDeterministicAndCoverTheCases(t *testing.T) {
	a := plugintest.StandardFixtures([]time.Duration{30 * time.Second, 180 * time.Second}, 50)
	b := plugintest.StandardFixtures([]time.Duration{30 * time.Second, 180 * time.Second}, 50)
	if len(a) != len(b) {
		t.Fatal("different fixture counts")
	}
	var nan, v6, partial, empty bool
	for i := range a {
		if a[i].Name != b[i].Name || len(a[i].Batch.Rows) != len(b[i].Batch.Rows) {
			t.Fatalf("fixture %d differs between calls", i)
		}
		for r, row := range a[i].Batch.Rows {
			for j, v := range row.Values {
				w := b[i].Batch.Rows[r].Values[j]
				if v != w && !(math.IsNaN(v) && math.IsNaN(w)) {
					t.Fatalf("fixture %q row %d value %d: %v vs %v", a[i].Name, r, j, v, w)
				}
				nan = nan || math.IsNaN(v)
			}
			v6 = v6 || row.Src.Is6()
			partial = partial || row.Flags&sdk.WindowPartial != 0
		}
		empty = empty || len(a[i].Batch.Rows) == 0
	}
	if !nan || !v6 || !partial || !empty {
		t.Fatalf("fixtures lack a case: NaN %v, IPv6 %v, partial %v, empty %v", nan, v6, partial, empty)
	}
	if a[2].Name != "one row, 180s window" || a[2].Batch.Window != 180*time.Second {
		t.Fatalf("fixture 2 = %q (%s), want one row per subscribed window", a[2].Name, a[2].Batch.Window)
	}
}

func TestGolden(t *testing.T) {
	t.Chdir(t.TempDir())
	src := netip.MustParseAddr("10.0.0.9")
	alerts := []sdk.Alert{
		{Row: 1, Label: "b", Score: 0.123456789012345, Severity: sdk.SeverityHigh, Src: src, Window: 30 * time.Second, ID: "run1-1", Time: time.Now(),
			TopFeatures: []sdk.FeatureValue{{Name: sdk.FeatureSYN, Value: math.NaN()}}, Details: json.RawMessage(`{"z":1,"a":[2]}`)},
		{Row: 0, Label: "a", Score: 1, Src: src, Window: 30 * time.Second, ID: "run1-2"},
	}
	// Missing file: an error that says how to create it.
	r := record(t, func(tb plugintest.TB) { plugintest.Golden(tb, "scan/alerts", alerts) })
	r.wantReported(t, filepath.Join("testdata", "scan", "alerts.golden.json")+" does not exist", "-args -update", plugintest.UpdateEnv+"=1")

	t.Setenv(plugintest.UpdateEnv, "1")
	r = record(t, func(tb plugintest.TB) { plugintest.Golden(tb, "scan/alerts", alerts) })
	if len(r.errors) != 0 {
		t.Fatalf("update: %s", r.all())
	}
	written, err := os.ReadFile(filepath.Join("testdata", "scan", "alerts.golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(written)
	if strings.Contains(s, "run1") || strings.Contains(s, `"time"`) || !strings.Contains(s, `"value": "NaN"`) ||
		!strings.Contains(s, `"score": 0.123456789`) || strings.Index(s, `"label": "a"`) > strings.Index(s, `"label": "b"`) ||
		!strings.Contains(s, "\"details\": {\n      \"a\": [\n        2\n      ],\n      \"z\": 1") {
		t.Fatalf("golden file:\n%s", s)
	}

	t.Setenv(plugintest.UpdateEnv, "")
	// Another run: new IDs and times, another order: no difference.
	again := []sdk.Alert{alerts[1], alerts[0]}
	again[0].ID, again[1].ID, again[1].Time = "run2-1", "run2-2", time.Now().Add(time.Hour)
	r = record(t, func(tb plugintest.TB) { plugintest.Golden(tb, "scan/alerts", again) })
	if len(r.errors) != 0 {
		t.Fatalf("the same alerts from another run differ: %s", r.all())
	}
	// A changed score is a difference, shown.
	again[1].Score = 0.5
	r = record(t, func(tb plugintest.TB) { plugintest.Golden(tb, "scan/alerts", again) })
	r.wantReported(t, "2 alerts differ", `-     "score": 0.123456789`, `+     "score": 0.5`)

	r = record(t, func(tb plugintest.TB) { plugintest.Golden(tb, "../escape", alerts) })
	r.wantReported(t, `name "../escape"`)
	r = record(t, func(tb plugintest.TB) {
		plugintest.Golden(tb, "bad-details", []sdk.Alert{{Label: "x", Details: json.RawMessage("{")}})
	})
	r.wantReported(t, "Details is not JSON")
}
