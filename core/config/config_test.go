package config

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/netguardian/netguardian/sdk"
)

// pcapSchema is the capture-pcap plugin's schema as its owner described it.
var pcapSchema = sdk.Schema{
	{Name: "files", Type: sdk.TypeListString},
	{Name: "interface", Type: sdk.TypeString},
	{Name: "bpf", Type: sdk.TypeString},
	{Name: "snaplen", Type: sdk.TypeNumber},
	{Name: "speed", Type: sdk.TypeNumber},
	{Name: "loop", Type: sdk.TypeBool},
	{Name: "promisc", Type: sdk.TypeBool},
}

var postgresSchema = sdk.Schema{
	{Name: "url", Type: sdk.TypeString, Required: true, Sensitive: true},
}

// unsetenv removes a variable for the duration of the test.
func unsetenv(t *testing.T, name string) {
	t.Helper()
	t.Setenv(name, "") // registers the restore
	if err := os.Unsetenv(name); err != nil {
		t.Fatal(err)
	}
}

func pos(r *hcl.Range) string {
	if r == nil {
		return "<no range>"
	}
	return fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
}

// requireNoDiags fails the test with the printed diagnostics.
func requireNoDiags(t *testing.T, files map[string]*hcl.File, diags hcl.Diagnostics) {
	t.Helper()
	if len(diags) == 0 {
		return
	}
	var buf bytes.Buffer
	_ = WriteDiagnostics(&buf, files, diags, false)
	t.Fatalf("unexpected diagnostics:\n%s", buf.String())
}

// oneDiag asserts diags holds exactly one error at wantPos whose summary
// and detail together contain every string in want.
func oneDiag(t *testing.T, diags hcl.Diagnostics, wantPos string, want ...string) *hcl.Diagnostic {
	t.Helper()
	if len(diags) != 1 {
		for _, d := range diags {
			t.Logf("  %s: %s; %s", pos(d.Subject), d.Summary, d.Detail)
		}
		t.Fatalf("got %d diagnostics, want 1", len(diags))
	}
	d := diags[0]
	if d.Severity != hcl.DiagError {
		t.Errorf("severity = %v, want error", d.Severity)
	}
	if got := pos(d.Subject); got != wantPos {
		t.Errorf("position = %s, want %s (%s; %s)", got, wantPos, d.Summary, d.Detail)
	}
	text := d.Summary + "; " + d.Detail
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("diagnostic %q does not contain %q", text, w)
		}
	}
	return d
}

func TestRepoConfig(t *testing.T) {
	unsetenv(t, "NETGUARDIAN_SENSOR")
	unsetenv(t, "NETGUARDIAN_API_TOKEN")
	c, diags := Load("../../netguardian.hcl")
	requireNoDiags(t, c.Files(), diags)
	requireNoDiags(t, c.Files(), Validate(c))

	if c.Sensor.Name != "netguardian" {
		t.Errorf("sensor name = %q, want netguardian", c.Sensor.Name)
	}
	if c.API.Listen != "127.0.0.1:5000" || c.API.Token != "" {
		t.Errorf("api = %v", c.API)
	}
	if len(c.Captures) != 1 || len(c.Detectors) != 2 || len(c.Sinks) != 0 {
		t.Fatalf("plugins: %d captures, %d detectors, %d sinks; want 1, 2, 0", len(c.Captures), len(c.Detectors), len(c.Sinks))
	}
	if d := c.Detectors[0]; d.Name != "portscan" || d.Plugin != "detector-portscan" || !d.Enabled {
		t.Errorf("detector = %+v", d)
	}
	b := c.Captures[0]
	if b.Kind != sdk.KindCapture || b.Name != "replay" || b.Plugin != "capture-pcap" || !b.Enabled {
		t.Errorf("capture = %+v", b)
	}
	js, diags := DecodePluginConfig(b, pcapSchema)
	requireNoDiags(t, c.Files(), diags)
	if want := `{"files":["examples/pcaps/sample.pcap"],"loop":true,"speed":1}`; string(js) != want {
		t.Errorf("replay config = %s, want %s", js, want)
	}
	// The sample's defaults must stay in step with the code's.
	d := Default()
	d.Sensor.Name = "netguardian"
	for _, pair := range [][2]any{{c.Sensor, d.Sensor}, {c.API, d.API}, {c.Aggregation, d.Aggregation}, {c.Pipeline, d.Pipeline}} {
		// %#v prints an empty and a nil AllowedOrigins alike, which is the
		// comparison wanted: the file writes [], the default is nil.
		got, want := fmt.Sprintf("%#v", pair[0]), fmt.Sprintf("%#v", pair[1])
		if got != want {
			t.Errorf("netguardian.hcl does not show the defaults:\n got %s\nwant %s", got, want)
		}
	}
}

func TestExampleConfigs(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://u:pw@db/ng")
	t.Setenv("NETGUARDIAN_API_TOKEN", "tok")
	unsetenv(t, "NETGUARDIAN_SENSOR")
	unsetenv(t, "NETGUARDIAN_INTERFACE")
	schemas := map[string]sdk.Schema{"capture-pcap": pcapSchema, "sink-postgres": postgresSchema}
	want := map[string][]string{
		"live-interface.hcl": {`{"bpf":"not port 22","interface":"eth0","promisc":true,"snaplen":262144}`},
		"postgres-sink.hcl":  {`{"files":["examples/pcaps/sample.pcap"],"speed":0}`, `{"url":"postgres://u:pw@db/ng"}`},
		"central-view.hcl":   {`{"url":"postgres://u:pw@db/ng"}`},
	}
	paths, err := filepath.Glob("../../examples/configs/*.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != len(want) {
		t.Fatalf("found %d example configs %v, want %d", len(paths), paths, len(want))
	}
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			c, diags := Load(p)
			requireNoDiags(t, c.Files(), diags)
			requireNoDiags(t, c.Files(), Validate(c))
			var got []string
			for _, b := range c.Plugins() {
				js, diags := DecodePluginConfig(b, schemas[b.Plugin])
				requireNoDiags(t, c.Files(), diags)
				got = append(got, string(js))
			}
			if !reflect.DeepEqual(got, want[filepath.Base(p)]) {
				t.Errorf("plugin configs = %q, want %q", got, want[filepath.Base(p)])
			}
		})
	}

	// The central view insists on a token from the environment.
	unsetenv(t, "NETGUARDIAN_API_TOKEN")
	_, diags := Load("../../examples/configs/central-view.hcl")
	oneDiag(t, diags, "../../examples/configs/central-view.hcl:16:26", `"NETGUARDIAN_API_TOKEN" is not set`)
}

func TestDefaults(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Skip("no host name:", err)
	}
	for _, src := range []string{"", "# nothing\n", "sensor {}\napi {}\naggregation {}\npipeline {}\n"} {
		c, diags := Parse("empty.hcl", []byte(src))
		requireNoDiags(t, c.Files(), diags)
		want := Config{
			Sensor:      SensorConfig{Name: host, PluginDir: "bin/plugins", LogLevel: slog.LevelInfo, LogFormat: "text", SpoolDir: "var/spool", SpoolMaxMiB: 1024},
			API:         APIConfig{Listen: "127.0.0.1:5000", SnapshotInterval: 2 * time.Second, ActiveFor: 5 * time.Minute},
			Aggregation: AggregationConfig{Lateness: 2 * time.Second, IdleTimeout: 10 * time.Second, MaxSources: 200000, DistinctExactLimit: 1024},
			Pipeline:    PipelineConfig{BatchSize: 8192, FlushInterval: 100 * time.Millisecond, QueueDepth: 64, DropRawPackets: true},
		}
		if !reflect.DeepEqual(c.Sensor, want.Sensor) || !reflect.DeepEqual(c.API, want.API) ||
			!reflect.DeepEqual(c.Aggregation, want.Aggregation) || !reflect.DeepEqual(c.Pipeline, want.Pipeline) {
			t.Errorf("Parse(%q) =\n%#v\n%#v\n%#v\n%#v\nwant\n%#v\n%#v\n%#v\n%#v", src,
				c.Sensor, c.API, c.Aggregation, c.Pipeline, want.Sensor, want.API, want.Aggregation, want.Pipeline)
		}
		d := Default()
		if !reflect.DeepEqual(d.Sensor, want.Sensor) || !reflect.DeepEqual(d.Pipeline, want.Pipeline) ||
			!reflect.DeepEqual(d.API, want.API) || !reflect.DeepEqual(d.Aggregation, want.Aggregation) {
			t.Errorf("Default() differs from an empty file")
		}
		if c.Path != "empty.hcl" || c.Files()["empty.hcl"] == nil {
			t.Errorf("Path = %q, files = %v", c.Path, c.Files())
		}
		if len(c.Plugins()) != 0 {
			t.Errorf("plugins = %v", c.Plugins())
		}
	}
}

func TestAllCoreAttributes(t *testing.T) {
	src := `
sensor {
  name       = "s-9"
  plugin_dir = "/opt/ng/plugins"
  log_level  = "debug"
  log_format = "json"
  spool_dir  = "/var/spool/ng"
  spool_max_mib = 64
}
api {
  listen            = "[::1]:8080"
  token             = "t0k"
  allowed_origins   = ["https://NOC.example.com", "http://localhost:3000/"]
  snapshot_interval = "500ms"
  active_for        = "1h30m"
}
aggregation {
  lateness             = "0s"
  idle_timeout         = "1m"
  max_sources          = 5000
  distinct_exact_limit = 64
}
pipeline {
  batch_size       = 256
  flush_interval   = "250ms"
  queue_depth      = 8
  drop_raw_packets = false
}
`
	c, diags := Parse("all.hcl", []byte(src))
	requireNoDiags(t, c.Files(), diags)
	want := &Config{
		Sensor:      SensorConfig{Name: "s-9", PluginDir: "/opt/ng/plugins", LogLevel: slog.LevelDebug, LogFormat: "json", SpoolDir: "/var/spool/ng", SpoolMaxMiB: 64},
		API:         APIConfig{Listen: "[::1]:8080", Token: "t0k", AllowedOrigins: []string{"https://noc.example.com", "http://localhost:3000"}, SnapshotInterval: 500 * time.Millisecond, ActiveFor: 90 * time.Minute},
		Aggregation: AggregationConfig{Lateness: 0, IdleTimeout: time.Minute, MaxSources: 5000, DistinctExactLimit: 64},
		Pipeline:    PipelineConfig{BatchSize: 256, FlushInterval: 250 * time.Millisecond, QueueDepth: 8, DropRawPackets: false},
	}
	if !reflect.DeepEqual(c.Sensor, want.Sensor) || !reflect.DeepEqual(c.API, want.API) ||
		!reflect.DeepEqual(c.Aggregation, want.Aggregation) || !reflect.DeepEqual(c.Pipeline, want.Pipeline) {
		t.Errorf("got\n%#v\n%#v\n%#v\n%#v", c.Sensor, c.API, c.Aggregation, c.Pipeline)
	}
	if got := pos(c.AttrRange("api.listen").Ptr()); got != "all.hcl:11:23" {
		t.Errorf("AttrRange(api.listen) = %s", got)
	}
	if got := pos(c.AttrRange("pipeline.nonexistent").Ptr()); got != "all.hcl:23:1" {
		t.Errorf("AttrRange falls back to the block: %s", got)
	}
}

// TestEveryAttributeDecoded gives every core attribute a value of no
// usable type: each must be read (one diagnostic each), or an attribute
// listed in the schema would silently be ignored.
func TestEveryAttributeDecoded(t *testing.T) {
	for block, names := range map[string][]string{"sensor": sensorAttrs, "api": apiAttrs, "aggregation": aggregationAttrs, "pipeline": pipelineAttrs} {
		var src strings.Builder
		src.WriteString(block + " {\n")
		for _, n := range names {
			fmt.Fprintf(&src, "  %s = {}\n", n)
		}
		src.WriteString("}\n")
		_, diags := Parse("t.hcl", []byte(src.String()))
		if len(diags) != len(names) {
			t.Errorf("%s: %d diagnostics for %d attributes: %v", block, len(diags), len(names), diags)
		}
	}
}

func TestNullMeansDefault(t *testing.T) {
	c, diags := Parse("t.hcl", []byte("api {\n  listen = null\n  allowed_origins = null\n}\n"))
	requireNoDiags(t, c.Files(), diags)
	if c.API.Listen != DefaultListen || c.API.AllowedOrigins != nil {
		t.Errorf("api = %v", c.API)
	}
}

func TestEnvFunction(t *testing.T) {
	t.Setenv("NG_TEST_SET", "from-env")
	t.Setenv("NG_TEST_EMPTY", "")
	unsetenv(t, "NG_TEST_UNSET")
	for _, tc := range []struct{ expr, want string }{
		{`env("NG_TEST_SET")`, "from-env"},
		{`env("NG_TEST_SET", "dflt")`, "from-env"},
		{`env("NG_TEST_UNSET", "dflt")`, "dflt"},
		{`env("NG_TEST_EMPTY", "dflt")`, ""}, // set to empty wins
		{`"${env("NG_TEST_SET")}-x"`, "from-env-x"},
	} {
		c, diags := Parse("t.hcl", []byte("api {\n  token = "+tc.expr+"\n}\n"))
		requireNoDiags(t, c.Files(), diags)
		if c.API.Token != tc.want {
			t.Errorf("%s = %q, want %q", tc.expr, c.API.Token, tc.want)
		}
	}

	_, diags := Parse("t.hcl", []byte("sensor {\n  name = env(\"NG_TEST_UNSET\")\n}\n"))
	oneDiag(t, diags, "t.hcl:2:15", `environment variable "NG_TEST_UNSET" is not set`)

	_, diags = Parse("t.hcl", []byte("sensor {\n  name = env(\"A\", \"b\", \"c\")\n}\n"))
	oneDiag(t, diags, "t.hcl:2:25", "at most one default")

	_, diags = Parse("t.hcl", []byte("sensor {\n  name = env()\n}\n"))
	oneDiag(t, diags, "t.hcl:2:14", "Not enough function arguments")
}

func TestFileFunction(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token.txt"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	abs := filepath.Join(dir, "token.txt")
	cfg := filepath.Join(dir, "netguardian.hcl")
	for _, expr := range []string{`file("token.txt")`, fmt.Sprintf("file(%q)", abs), `trimspace(file("token.txt"))`} {
		if err := os.WriteFile(cfg, []byte("api {\n  token = "+expr+"\n}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		c, diags := Load(cfg)
		if strings.HasPrefix(expr, "trimspace") {
			// Only env and file exist; the error suggests nothing unrelated.
			oneDiag(t, diags, cfg+":2:11", "Call to unknown function", `no function named "trimspace"`)
			continue
		}
		requireNoDiags(t, c.Files(), diags)
		if c.API.Token != "s3cret\n" { // trailing newline kept as-is
			t.Errorf("%s = %q", expr, c.API.Token)
		}
	}

	// Relative to the config file's directory, not the working directory.
	_, diags := Parse(filepath.Join(dir, "x.hcl"), []byte("api {\n  token = file(\"missing.txt\")\n}\n"))
	oneDiag(t, diags, filepath.Join(dir, "x.hcl")+":2:17", `read "missing.txt"`, filepath.Join(dir, "missing.txt"))

	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, bytes.Repeat([]byte("a"), maxFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	_, diags = Parse(filepath.Join(dir, "x.hcl"), []byte("api {\n  token = file(\"big\")\n}\n"))
	oneDiag(t, diags, filepath.Join(dir, "x.hcl")+":2:17", "larger than 1 MiB")

	_, diags = Parse(filepath.Join(dir, "x.hcl"), []byte("api {\n  token = file(\"/dev/zero\")\n}\n"))
	oneDiag(t, diags, filepath.Join(dir, "x.hcl")+":2:17", "not a regular file")

	if err := os.WriteFile(filepath.Join(dir, "bin"), []byte{0xff, 0xfe}, 0o600); err != nil {
		t.Fatal(err)
	}
	_, diags = Parse(filepath.Join(dir, "x.hcl"), []byte("api {\n  token = file(\"bin\")\n}\n"))
	oneDiag(t, diags, filepath.Join(dir, "x.hcl")+":2:17", "not UTF-8")
}

func TestLoadMissingFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "nope.hcl")
	c, diags := Load(p)
	if c == nil || len(diags) != 1 || !diags.HasErrors() || !strings.Contains(diags[0].Detail, p) {
		t.Fatalf("Load(missing) = %v, %v", c, diags)
	}
}

// TestErrors: each mistake gives exactly one diagnostic, at the right place.
func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src, pos string
		want           []string
	}{
		{"unknown attribute with suggestion", "sensor {\n  nmae = \"x\"\n}\n", "t.hcl:2:3",
			[]string{"Unsupported argument", `An argument named "nmae" is not expected here. Did you mean "name"?`}},
		{"unknown attribute in api", "api {\n  listne = \"x\"\n}\n", "t.hcl:2:3", []string{`Did you mean "listen"?`}},
		{"unknown block with suggestion", "detecter \"x\" {\n}\n", "t.hcl:1:1",
			[]string{"Unsupported block type", `Did you mean "detector"?`}},
		{"top-level attribute", "log_level = \"info\"\n", "t.hcl:1:1", []string{"Unsupported argument"}},
		{"attribute written as block", "sensor {\n  name {\n  }\n}\n", "t.hcl:2:3", []string{`Did you mean to define argument "name"?`}},
		{"label on singleton", "sensor \"a\" {\n}\n", "t.hcl:1:8", []string{"Extraneous label for sensor"}},
		{"duplicate singleton", "api {\n}\n\napi {\n}\n", "t.hcl:4:1", []string{"Duplicate api block", "t.hcl:1,1-4"}},
		{"wrong type number", "aggregation {\n  max_sources = \"lots\"\n}\n", "t.hcl:2:17",
			[]string{"Incorrect attribute value type", `"max_sources"`, "a number is required"}},
		{"wrong type bool", "pipeline {\n  drop_raw_packets = \"maybe\"\n}\n", "t.hcl:2:22", []string{"a bool is required"}},
		{"wrong type list", "api {\n  allowed_origins = \"https://a.example\"\n}\n", "t.hcl:2:21", []string{`"allowed_origins"`, "list of string required"}},
		{"wrong element type", "api {\n  allowed_origins = [\"https://a.example\", {}]\n}\n", "t.hcl:2:21", []string{"element 1: string required"}},
		{"null element", "api {\n  allowed_origins = [null]\n}\n", "t.hcl:2:21", []string{"element 0", "is null"}},
		{"invalid duration", "api {\n  snapshot_interval = \"2 seconds\"\n}\n", "t.hcl:2:23",
			[]string{"Invalid duration", `api.snapshot_interval: "2 seconds" is not a duration`}},
		{"duration without unit", "api {\n  active_for = 300\n}\n", "t.hcl:2:16", []string{`"300" is not a duration`}},
		{"negative duration", "aggregation {\n  lateness = \"-1s\"\n}\n", "t.hcl:2:14", []string{"aggregation.lateness must not be negative"}},
		{"zero duration", "pipeline {\n  flush_interval = \"0s\"\n}\n", "t.hcl:2:20", []string{"pipeline.flush_interval must be longer than zero"}},
		{"log level", "sensor {\n  log_level = \"verbose\"\n}\n", "t.hcl:2:15",
			[]string{"Invalid value for sensor.log_level", `must be one of "debug", "info", "warn", "error"; got "verbose".`}},
		{"log level suggestion", "sensor {\n  log_level = \"warning\"\n}\n", "t.hcl:2:15", []string{`got "warning"`}},
		{"log level near miss", "sensor {\n  log_level = \"inf\"\n}\n", "t.hcl:2:15", []string{`Did you mean "info"?`}},
		{"log format", "sensor {\n  log_format = \"xml\"\n}\n", "t.hcl:2:16", []string{"sensor.log_format must be one of"}},
		{"empty name", "sensor {\n  name = \"\"\n}\n", "t.hcl:2:10", []string{"sensor.name must not be empty"}},
		{"listen without port", "api {\n  listen = \"localhost\"\n}\n", "t.hcl:2:12", []string{"api.listen must be host:port"}},
		{"listen bad port", "api {\n  listen = \"127.0.0.1:70000\"\n}\n", "t.hcl:2:12", []string{"port number from 0 to 65535"}},
		{"origin with path", "api {\n  allowed_origins = [\"https://a.example/x\"]\n}\n", "t.hcl:2:21",
			[]string{"Element 0 of api.allowed_origins", `(write "https://a.example")`}},
		{"origin wildcard", "api {\n  allowed_origins = [\"*\"]\n}\n", "t.hcl:2:21", []string{"must be an origin"}},
		{"zero count", "aggregation {\n  max_sources = 0\n}\n", "t.hcl:2:17", []string{"aggregation.max_sources must be greater than zero, got 0."}},
		{"negative count", "pipeline {\n  queue_depth = -5\n}\n", "t.hcl:2:17", []string{"must be greater than zero, got -5"}},
		{"fractional count", "pipeline {\n  batch_size = 1.5\n}\n", "t.hcl:2:16", []string{"pipeline.batch_size must be a whole number, got 1.5"}},
		{"huge count", "aggregation {\n  distinct_exact_limit = 1e12\n}\n", "t.hcl:2:26", []string{"must be at most 2147483647"}},
		{"variable", "sensor {\n  name = hostname\n}\n", "t.hcl:2:10", []string{"Variables not allowed"}},
		{"unknown function", "sensor {\n  name = envv(\"X\")\n}\n", "t.hcl:2:10", []string{"Call to unknown function", `Did you mean "env"?`}},
		{"syntax error", "sensor {\n  name = \"x\"\n", "t.hcl:1:8", []string{"Unclosed configuration block"}},
		{"missing label", "capture {\n  plugin = \"x\"\n}\n", "t.hcl:1:9", []string{"Missing name for capture"}},
		{"duplicate label", "sink \"db\" {\n  plugin = \"a\"\n}\nsink \"db\" {\n  plugin = \"b\"\n}\n", "t.hcl:4:6",
			[]string{`Duplicate sink block "db"`, "t.hcl:1,1-10"}},
		{"bad label", "capture \"my capture\" {\n  plugin = \"a\"\n}\n", "t.hcl:1:9", []string{"Invalid capture name", `"my capture"`}},
		{"missing plugin", "detector \"d\" {\n  enabled = true\n}\n", "t.hcl:1:1", []string{"Missing required argument", "needs a plugin argument"}},
		{"empty plugin", "detector \"d\" {\n  plugin = \"\"\n}\n", "t.hcl:2:12", []string{"detector.d.plugin must name a plugin"}},
		{"plugin wrong type", "detector \"d\" {\n  plugin = [\"x\"]\n}\n", "t.hcl:2:12", []string{"string required"}},
		{"bad sha256", "capture \"c\" {\n  plugin = \"p\"\n  sha256 = \"abc\"\n}\n", "t.hcl:3:12", []string{"capture.c.sha256 must be 64 hexadecimal digits", "got 3 characters"}},
		{"non-hex sha256", "capture \"c\" {\n  plugin = \"p\"\n  sha256 = \"" + strings.Repeat("g", 64) + "\"\n}\n", "t.hcl:3:12", []string{`'g' is not one`}},
		{"enabled wrong type", "sink \"s\" {\n  plugin = \"p\"\n  enabled = \"yes\"\n}\n", "t.hcl:3:13", []string{"a bool is required"}},
		{"unknown plugin attribute", "sink \"s\" {\n  enabeld = false\n  plugin = \"p\"\n}\n", "t.hcl:2:3", []string{`Did you mean "enabled"?`}},
		{"duplicate config", "sink \"s\" {\n  plugin = \"p\"\n  config {\n  }\n  config {\n  }\n}\n", "t.hcl:5:3",
			[]string{"Duplicate config block", "t.hcl:3,3-9"}},
		{"labelled config", "sink \"s\" {\n  plugin = \"p\"\n  config \"x\" {\n  }\n}\n", "t.hcl:3:10", []string{"Extraneous label for config"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := Parse("t.hcl", []byte(tc.src))
			oneDiag(t, diags, tc.pos, tc.want...)
		})
	}
}

func TestPluginBlocks(t *testing.T) {
	sha := strings.Repeat("AB", 32)
	src := `
sink "b" {
  plugin = "./build/sink-b"
}
capture "one" {
  plugin = "capture-pcap"
  sha256 = "` + sha + `"
}
detector "x" {
  plugin  = "detector-x"
  enabled = false
}
capture "two" {
  plugin = "capture-pcap"
}
sink "a" {
  plugin = "sink-a"
}
detector "x" {
  plugin = "detector-x"
}
`
	c, diags := Parse("p.hcl", []byte(src))
	// A disabled block still owns its name.
	oneDiag(t, diags, "p.hcl:19:10", `Duplicate detector block "x"`)

	var got []string
	for _, b := range c.Plugins() {
		got = append(got, fmt.Sprintf("%s.%s=%s", b.Kind, b.Name, b.Plugin))
	}
	want := []string{"capture.one=capture-pcap", "capture.two=capture-pcap", "detector.x=detector-x", "sink.b=./build/sink-b", "sink.a=sink-a"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Plugins() = %v, want %v", got, want)
	}
	if len(c.Detectors) != 2 || c.Detectors[0].Enabled {
		t.Errorf("detectors = %+v", c.Detectors)
	}
	one := c.Captures[0]
	if one.SHA256 != strings.ToLower(sha) {
		t.Errorf("sha256 = %q, want lower case", one.SHA256)
	}
	if pos(&one.DeclRange) != "p.hcl:5:1" || pos(&one.PluginRange) != "p.hcl:6:12" {
		t.Errorf("ranges = %s, %s", pos(&one.DeclRange), pos(&one.PluginRange))
	}
	if one.Body == nil {
		t.Error("Body is nil for a block without config")
	}
}

// decodeOne parses src (one capture block) and decodes its config.
func decodeOne(t *testing.T, src string, schema sdk.Schema) (string, hcl.Diagnostics) {
	t.Helper()
	c, diags := Parse("p.hcl", []byte(src))
	requireNoDiags(t, c.Files(), diags)
	if len(c.Captures) != 1 {
		t.Fatalf("want one capture block, got %d", len(c.Captures))
	}
	js, diags := DecodePluginConfig(c.Captures[0], schema)
	if diags.HasErrors() && js != nil {
		t.Errorf("JSON %s returned along with errors", js)
	}
	return string(js), diags
}

func TestDecodePluginConfig(t *testing.T) {
	t.Setenv("NG_TEST_BPF", "tcp")
	schema := sdk.Schema{
		{Name: "files", Type: sdk.TypeListString, Required: true, Description: "pcap files to replay"},
		{Name: "speed", Type: sdk.TypeNumber, Default: 1.0},
		{Name: "loop", Type: sdk.TypeBool},
		{Name: "timeout", Type: sdk.TypeDuration, Default: "5s"},
		{Name: "window", Type: sdk.TypeDuration, Default: 90 * time.Second},
		{Name: "ports", Type: sdk.TypeListNumber, Default: []int{80, 443}},
		{Name: "labels", Type: sdk.TypeMapString},
		{Name: "bpf", Type: sdk.TypeString},
	}
	head := "capture \"c\" {\n  plugin = \"capture-pcap\"\n"

	t.Run("all set", func(t *testing.T) {
		js, diags := decodeOne(t, head+`  config {
    files   = ["a.pcap", "b.pcapng"]
    speed   = 2.5
    loop    = true
    timeout = "90s"
    window  = "1h"
    ports   = [53, 5353.5]
    labels  = { site = "lab", "rack-id" = "7" }
    bpf     = env("NG_TEST_BPF")
  }
}
`, schema)
		requireNoDiags(t, nil, diags)
		want := `{"bpf":"tcp","files":["a.pcap","b.pcapng"],"labels":{"rack-id":"7","site":"lab"},"loop":true,"ports":[53,5353.5],"speed":2.5,"timeout":"1m30s","window":"1h0m0s"}`
		if js != want {
			t.Errorf("got  %s\nwant %s", js, want)
		}
	})

	t.Run("defaults applied", func(t *testing.T) {
		js, diags := decodeOne(t, head+"  config {\n    files = []\n  }\n}\n", schema)
		requireNoDiags(t, nil, diags)
		want := `{"files":[],"ports":[80,443],"speed":1,"timeout":"5s","window":"1m30s"}`
		if js != want {
			t.Errorf("got  %s\nwant %s", js, want)
		}
	})

	t.Run("no config block and nothing required", func(t *testing.T) {
		js, diags := decodeOne(t, head+"}\n", pcapSchema)
		requireNoDiags(t, nil, diags)
		if js != "{}" {
			t.Errorf("got %s, want {}", js)
		}
	})

	for _, tc := range []struct {
		name, body, pos string
		want            []string
	}{
		{"unknown attribute with suggestion", "  config {\n    files = []\n    speeed = 2\n  }\n}\n", "p.hcl:5:5",
			[]string{"Unsupported argument", `An argument named "speeed" is not expected here. Did you mean "speed"?`}},
		{"unknown attribute lists the schema", "  config {\n    files = []\n    color = \"red\"\n  }\n}\n", "p.hcl:5:5",
			[]string{`"color" is not expected here. The capture-pcap plugin accepts: bpf, files, labels, loop, ports, speed, timeout, window.`}},
		{"wrong type", "  config {\n    files = []\n    speed = \"fast\"\n  }\n}\n", "p.hcl:5:13",
			[]string{"Incorrect attribute value type", `Inappropriate value for attribute "speed": a number is required.`}},
		{"wrong element type", "  config {\n    files = [\"a\", [\"b\"]]\n  }\n}\n", "p.hcl:4:13", []string{`"files": element 1: string required`}},
		{"wrong map type", "  config {\n    files = []\n    labels = [\"x\"]\n  }\n}\n", "p.hcl:5:14", []string{"map of string required"}},
		{"missing required", "  config {\n    speed = 2\n  }\n}\n", "p.hcl:3:3",
			[]string{"Missing required argument", `requires the argument "files" (list(string): pcap files to replay)`, `capture "c"`}},
		{"missing required without config block", "}\n", "p.hcl:1:1", []string{"Missing required argument", `"files"`}},
		{"required but null", "  config {\n    files = null\n  }\n}\n", "p.hcl:4:13", []string{`"files" is required; null`}},
		{"invalid duration", "  config {\n    files = []\n    timeout = \"soon\"\n  }\n}\n", "p.hcl:5:15",
			[]string{"Invalid duration", `timeout: "soon" is not a duration`}},
		{"null in list", "  config {\n    files = [\"a\", null]\n  }\n}\n", "p.hcl:4:13", []string{"element 1"}},
		{"nested block", "  config {\n    files = []\n    filter {\n    }\n  }\n}\n", "p.hcl:5:5",
			[]string{"Unsupported block type", "holds only arguments (name = value), not nested blocks"}},
		{"nested block named like an attribute", "  config {\n    files = []\n    labels {\n      a = \"b\"\n    }\n  }\n}\n", "p.hcl:5:5",
			[]string{`Did you mean to define argument "labels"?`}},
		{"function error", "  config {\n    files = [env(\"NG_TEST_NOT_SET_EVER\")]\n  }\n}\n", "p.hcl:4:19", []string{`"NG_TEST_NOT_SET_EVER" is not set`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := decodeOne(t, head+tc.body, schema)
			oneDiag(t, diags, tc.pos, tc.want...)
		})
	}

	t.Run("invalid numbers", func(t *testing.T) {
		_, diags := decodeOne(t, head+"  config {\n    files = []\n    speed = 1e400\n  }\n}\n", schema)
		oneDiag(t, diags, "p.hcl:5:13", "out of range")
	})
}

func TestDecodePluginConfigBadSchema(t *testing.T) {
	src := "capture \"c\" {\n  plugin = \"capture-x\"\n}\n"
	for _, tc := range []struct {
		name   string
		schema sdk.Schema
		want   string
	}{
		{"unknown type", sdk.Schema{{Name: "a", Type: "float"}}, `attribute "a" has unknown type "float"`},
		{"bad name", sdk.Schema{{Name: "a b", Type: sdk.TypeString}}, `"a b" is not a valid HCL identifier`},
		{"duplicate", sdk.Schema{{Name: "a", Type: sdk.TypeString}, {Name: "a", Type: sdk.TypeBool}}, `"a" is declared twice`},
		{"bad default", sdk.Schema{{Name: "n", Type: sdk.TypeNumber, Default: "many"}}, `the default of "n" is not a number`},
		{"bad duration default", sdk.Schema{{Name: "d", Type: sdk.TypeDuration, Default: "soon"}}, `the default of "d" is not a duration`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := decodeOne(t, src, tc.schema)
			oneDiag(t, diags, "p.hcl:2:12", "Invalid plugin schema", `capture plugin "capture-x"`, tc.want, "bug in the plugin")
		})
	}
}

// A PluginBlock made by hand (no Parse) must not panic.
func TestDecodePluginConfigZeroBlock(t *testing.T) {
	js, diags := DecodePluginConfig(PluginBlock{Kind: sdk.KindSink, Name: "x"}, sdk.Schema{{Name: "n", Type: sdk.TypeNumber, Default: 3}})
	requireNoDiags(t, nil, diags)
	if string(js) != `{"n":3}` {
		t.Errorf("got %s", js)
	}
	_, diags = DecodePluginConfig(PluginBlock{Kind: sdk.KindSink, Name: "x"}, sdk.Schema{{Name: "n", Type: sdk.TypeNumber, Required: true}})
	if len(diags) != 1 || diags[0].Summary != "Missing required argument" {
		t.Errorf("diags = %v", diags)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		wantPos   string // "" = no error
	}{
		{"default listen", "capture \"c\" { plugin = \"p\" }\n", ""},
		{"all interfaces without token", "capture \"c\" { plugin = \"p\" }\napi {\n  listen = \"0.0.0.0:5000\"\n}\n", "v.hcl:3:12"},
		{"empty host without token", "capture \"c\" { plugin = \"p\" }\napi {\n  listen = \":5000\"\n}\n", "v.hcl:3:12"},
		{"host name without token", "capture \"c\" { plugin = \"p\" }\napi {\n  listen = \"sensor.lan:5000\"\n}\n", "v.hcl:3:12"},
		{"all interfaces with token", "capture \"c\" { plugin = \"p\" }\napi {\n  listen = \"0.0.0.0:5000\"\n  token = \"t\"\n}\n", ""},
		{"ipv6 loopback", "capture \"c\" { plugin = \"p\" }\napi {\n  listen = \"[::1]:5000\"\n}\n", ""},
		{"localhost", "capture \"c\" { plugin = \"p\" }\napi {\n  listen = \"LOCALHOST:5000\"\n}\n", ""},
		{"127/8", "capture \"c\" { plugin = \"p\" }\napi {\n  listen = \"127.0.0.2:5000\"\n}\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, diags := Parse("v.hcl", []byte(tc.src))
			requireNoDiags(t, c.Files(), diags)
			diags = Validate(c)
			if tc.wantPos == "" {
				requireNoDiags(t, c.Files(), diags)
				return
			}
			oneDiag(t, diags, tc.wantPos, "api.token is required when listening on a non-loopback address")
		})
	}

	t.Run("nothing to observe", func(t *testing.T) {
		c, diags := Parse("v.hcl", []byte("capture \"c\" {\n  plugin = \"p\"\n  enabled = false\n}\n"))
		requireNoDiags(t, c.Files(), diags)
		diags = Validate(c)
		if len(diags) != 1 || diags[0].Severity != hcl.DiagWarning || diags.HasErrors() || pos(diags[0].Subject) != "v.hcl:1:1" {
			t.Errorf("want one warning at v.hcl:1:1, got %v", diags)
		}
	})

	if diags := Validate(nil); !diags.HasErrors() {
		t.Error("Validate(nil) reported nothing")
	}
}

func TestTokenRedacted(t *testing.T) {
	c, diags := Parse("r.hcl", []byte("api {\n  token = \"s3cret-t0ken\"\n}\n"))
	requireNoDiags(t, c.Files(), diags)
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "%v %+v %#v %s %v %+v %#v\n", c.API, c.API, c.API, c.API, c, *c, *c)
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "api", c.API, "cfg", c)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "api", c.API)
	out := buf.String()
	if strings.Contains(out, "s3cret") {
		t.Errorf("token printed:\n%s", out)
	}
	if !strings.Contains(out, "REDACTED") {
		t.Errorf("no redaction marker:\n%s", out)
	}
	// An unset token shows as empty, so operators see that none is set.
	if s := (APIConfig{}).String(); !strings.Contains(s, "Token: ") {
		t.Errorf("unset token shown as %s", s)
	}
}

func TestWriteDiagnostics(t *testing.T) {
	c, diags := Parse("w.hcl", []byte("sensor {\n  nmae = \"x\"\n}\n"))
	var buf bytes.Buffer
	if err := WriteDiagnostics(&buf, c.Files(), diags, false); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"Error: Unsupported argument", "on w.hcl line 2, in sensor:", `2:   nmae = "x"`, `Did you mean "name"?`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	buf.Reset()
	if err := WriteDiagnostics(&buf, c.Files(), diags, true); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "\x1b[") {
		t.Errorf("color output has no escape codes:\n%q", buf.String())
	}
}

func TestWriteDiagnosticsBounded(t *testing.T) {
	src := "sensor {\n  name = \"x\"\n" + strings.Repeat("\\", 5000) + "\n}\n"
	c, diags := Parse("b.hcl", []byte(src))
	if len(diags) <= maxPrinted {
		t.Fatalf("want more than %d diagnostics to test the bound, got %d", maxPrinted, len(diags))
	}
	var buf bytes.Buffer
	if err := WriteDiagnostics(&buf, c.Files(), diags, false); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(buf.String(), "Error: "); got != maxPrinted {
		t.Errorf("printed %d diagnostics, want %d", got, maxPrinted)
	}
	if want := fmt.Sprintf("... and %d more diagnostics", len(diags)-maxPrinted); !strings.Contains(buf.String(), want) {
		t.Errorf("output lacks %q", want)
	}
}

// FuzzParse: no input may panic Parse, Validate, plugin decoding or the
// diagnostic printer.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("../../examples/configs/*.hcl")
	seeds = append(seeds, "../../netguardian.hcl")
	for _, p := range seeds {
		src, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Add([]byte("api {\n  listen = \"0.0.0.0:1\"\n  allowed_origins = [\"https://a\", null]\n}\ncapture \"x\" {\n  plugin = \"p\"\n  config {\n    speed = 1e400\n    files = [1, {}]\n  }\n}\n"))
	schema := append(sdk.Schema{{Name: "timeout", Type: sdk.TypeDuration, Default: "1s"}, {Name: "labels", Type: sdk.TypeMapString}, {Name: "url", Type: sdk.TypeString}}, pcapSchema...)
	f.Fuzz(func(t *testing.T, src []byte) {
		c, diags := Parse("fuzz.hcl", src)
		if c == nil {
			t.Fatal("Parse returned a nil Config")
		}
		if !diags.HasErrors() {
			diags = append(diags, Validate(c)...)
			for _, b := range c.Plugins() {
				_, more := DecodePluginConfig(b, schema)
				diags = append(diags, more...)
			}
		}
		if err := WriteDiagnostics(&bytes.Buffer{}, c.Files(), diags, false); err != nil {
			t.Fatal(err)
		}
	})
}

func TestPluginEnv(t *testing.T) {
	t.Setenv("NG_TEST_DB_PASSWORD", "pw-from-core-env")
	src := `
sink "db" {
  plugin = "sink-postgres"
  env = {
    PGPASSWORD = env("NG_TEST_DB_PASSWORD")
    _TRACE_1   = "s3cret-literal"
  }
}
detector "plain" {
  plugin = "detector-x"
}
`
	c, diags := Parse("e.hcl", []byte(src))
	requireNoDiags(t, c.Files(), diags)
	env := c.Sinks[0].Env
	if got, want := env.Environ(), []string{"PGPASSWORD=pw-from-core-env", "_TRACE_1=s3cret-literal"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Environ() = %q, want %q", got, want)
	}
	if c.Detectors[0].Env != nil || !c.Detectors[0].Env.Equal(Env{}) {
		t.Errorf("a block without env has %v", c.Detectors[0].Env)
	}
	if env.Equal(Env{"PGPASSWORD": "pw-from-core-env", "_TRACE_1": "other"}) || !env.Equal(Env{"PGPASSWORD": "pw-from-core-env", "_TRACE_1": "s3cret-literal"}) {
		t.Error("Equal does not compare values")
	}

	// Values never show when a block or the config is printed or logged.
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "%v %+v %#v %s %v %+v %#v\n", env, env, env, env, c.Sinks[0], c.Sinks[0], c.Sinks[0])
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "env", env, "block", c.Sinks[0], "cfg", c)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "env", env, "block", c.Sinks[0])
	out := buf.String()
	for _, secret := range []string{"pw-from-core-env", "s3cret-literal"} {
		if strings.Contains(out, secret) {
			t.Errorf("env value %q printed:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "PGPASSWORD=REDACTED") {
		t.Errorf("names are not shown:\n%s", out)
	}

	bad := []struct {
		name, env, pos string
		want           []string
	}{
		{"name starting with a digit", `{ "1X" = "v" }`, "b.hcl:3:11", []string{`"1X" is not an environment variable name`}},
		{"name with a dash", `{ "A-B" = "v" }`, "b.hcl:3:11", []string{`"A-B" is not an environment variable name`}},
		{"handshake variable", `{ PLUGIN_MIN_PORT = "1" }`, "b.hcl:3:11", []string{"PLUGIN_MIN_PORT cannot be set", "handshake"}},
		{"handshake cookie", `{ OK = "1", NETGUARDIAN_PLUGIN = "x" }`, "b.hcl:3:21", []string{"NETGUARDIAN_PLUGIN cannot be set"}},
		{"NUL in a value", `{ A = "x\u0000y" }`, "b.hcl:3:11", []string{"A contains a NUL byte"}},
		{"not a map", `["A=1"]`, "b.hcl:3:9", []string{"Incorrect attribute value type"}},
		{"nested value", `{ A = { B = "c" } }`, "b.hcl:3:9", []string{"Incorrect attribute value type"}},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			src := "capture \"c\" {\n  plugin = \"capture-pcap\"\n  env = " + b.env + "\n}\n"
			_, diags := Parse("b.hcl", []byte(src))
			d := oneDiag(t, diags, b.pos, b.want...)
			if strings.Contains(d.Detail, `"x`) || strings.Contains(d.Detail, `"1"`) {
				t.Errorf("diagnostic shows a value: %s", d.Detail)
			}
		})
	}
}

// TestCoreSettingsComplete: a reload compares CoreSettings, so an
// attribute missing there would be a change it silently ignores.
func TestCoreSettingsComplete(t *testing.T) {
	got := Default().CoreSettings()
	n := 0
	for block, names := range map[string][]string{"sensor": sensorAttrs, "api": apiAttrs, "aggregation": aggregationAttrs, "pipeline": pipelineAttrs} {
		for _, name := range names {
			n++
			if _, ok := got[block+"."+name]; !ok {
				t.Errorf("CoreSettings lacks %s.%s", block, name)
			}
		}
	}
	if len(got) != n {
		t.Errorf("CoreSettings has %d settings, the schema %d", len(got), n)
	}
	a, _ := Parse("a.hcl", []byte("api {\n  listen = \"127.0.0.1:1\"\n}\n"))
	b, _ := Parse("b.hcl", []byte("api {\n  listen = \"127.0.0.1:2\"\n}\n"))
	for k, v := range a.CoreSettings() {
		same := reflect.DeepEqual(v, b.CoreSettings()[k])
		if same != (k != "api.listen") {
			t.Errorf("%s: equal = %v", k, same)
		}
	}
}
