package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/netguardian/netguardian/core/host"
	"github.com/netguardian/netguardian/core/pipeline"
	"github.com/netguardian/netguardian/core/store"
	"github.com/netguardian/netguardian/sdk"
)

type featuresJSON struct {
	Window string   `json:"window"`
	Names  []string `json:"names"`
	Rows   []struct {
		Src      string              `json:"src"`
		Sensor   string              `json:"sensor"`
		Start    time.Time           `json:"start"`
		End      time.Time           `json:"end"`
		Flags    []string            `json:"flags"`
		Features map[string]*float64 `json:"features"`
	} `json:"rows"`
}

func TestFeatures(t *testing.T) {
	f := newFixture(t, nil)

	var all featuresJSON
	f.getJSON(t, "/api/features", http.StatusOK, &all)
	if all.Window != "5s" || len(all.Rows) != fixtureWindows*len(fixtureSources) {
		t.Fatalf("default query: window %q, %d rows; want 5s and %d", all.Window, len(all.Rows), fixtureWindows*len(fixtureSources))
	}
	if !slices.Equal(all.Names, sdk.Features) {
		t.Fatalf("names %v", all.Names)
	}
	first := all.Rows[0]
	if first.Src != "10.0.0.1" || !first.Start.Equal(base) || !first.End.Equal(base.Add(5*time.Second)) || first.Sensor != "lab" {
		t.Fatalf("first row %+v", first)
	}
	if len(first.Features) != len(sdk.Features) {
		t.Fatalf("first row has %d features, want every one of %d", len(first.Features), len(sdk.Features))
	}
	if p := first.Features[sdk.FeaturePackets]; p == nil || *p != fixturePackets(0, 0) {
		t.Fatalf("packets_total = %v, want %v", p, fixturePackets(0, 0))
	}
	if v, ok := first.Features[sdk.FeatureHandshakeLatency]; !ok || v != nil {
		t.Fatalf("NaN feature encoded as %v (present %v), want null", v, ok)
	}
	last := all.Rows[len(all.Rows)-1]
	if last.Src != "2001:db8::1" || !slices.Equal(last.Flags, []string{"partial", "estimated"}) || len(first.Flags) != 0 {
		t.Fatalf("flags: last %v %v, first %v", last.Src, last.Flags, first.Flags)
	}

	// The raw JSON carries null, and features in the names' order.
	_, _, raw := f.get(t, "/api/features?limit=1")
	if !strings.Contains(string(raw), `"tcp_handshake_latency_ms":null`) || !strings.Contains(string(raw), `"features":{"packets_total":`) {
		t.Fatalf("raw row: %s", raw)
	}

	var one featuresJSON
	f.getJSON(t, "/api/features?src=10.0.0.2", http.StatusOK, &one)
	if len(one.Rows) != fixtureWindows {
		t.Fatalf("src filter: %d rows", len(one.Rows))
	}
	for _, r := range one.Rows {
		if r.Src != "10.0.0.2" {
			t.Fatalf("src filter returned %s", r.Src)
		}
	}
	// An IPv4-mapped address means the same source.
	var mapped featuresJSON
	f.getJSON(t, "/api/features?src=::ffff:10.0.0.2", http.StatusOK, &mapped)
	if len(mapped.Rows) != fixtureWindows {
		t.Fatalf("mapped src: %d rows", len(mapped.Rows))
	}

	// RFC 3339 and Unix seconds select the same half-open range.
	from, to := base.Add(10*time.Second), base.Add(20*time.Second)
	var rfc, unix featuresJSON
	f.getJSON(t, "/api/features?from="+url.QueryEscape(from.Format(time.RFC3339))+"&to="+url.QueryEscape(to.Format(time.RFC3339)), http.StatusOK, &rfc)
	f.getJSON(t, fmt.Sprintf("/api/features?from=%d&to=%d.0", from.Unix(), to.Unix()), http.StatusOK, &unix)
	if len(rfc.Rows) != 2*len(fixtureSources) || len(unix.Rows) != len(rfc.Rows) {
		t.Fatalf("range: %d rows (rfc3339), %d (unix); want %d", len(rfc.Rows), len(unix.Rows), 2*len(fixtureSources))
	}
	for _, r := range rfc.Rows {
		if r.Start.Before(from) || !r.Start.Before(to) {
			t.Fatalf("row starting %s outside [%s, %s)", r.Start, from, to)
		}
	}

	// limit keeps the newest windows.
	var lim featuresJSON
	f.getJSON(t, "/api/features?limit=4", http.StatusOK, &lim)
	if len(lim.Rows) != 4 || !lim.Rows[0].Start.Equal(base.Add((fixtureWindows-1)*5*time.Second)) {
		t.Fatalf("limit 4: %d rows, first start %v", len(lim.Rows), lim.Rows[0].Start)
	}

	var w30 featuresJSON
	f.getJSON(t, "/api/features?window=30s", http.StatusOK, &w30)
	if w30.Window != "30s" || len(w30.Rows) != 2*len(fixtureSources) || *w30.Rows[0].Features[sdk.FeaturePackets] != 6*fixturePackets(0, 0) {
		t.Fatalf("30s: window %q, %d rows", w30.Window, len(w30.Rows))
	}
	var w180 featuresJSON
	f.getJSON(t, "/api/features?window=180s", http.StatusOK, &w180)
	if w180.Window != "180s" || len(w180.Rows) != 0 || w180.Rows == nil || w180.Names == nil {
		t.Fatalf("180s (empty): %+v", w180)
	}
}

func TestProtocols(t *testing.T) {
	f := newFixture(t, nil)
	var out struct{ Protocols []protocolJSON }
	f.getJSON(t, "/api/protocols", http.StatusOK, &out)
	// The store rounds each window's counts; the fixtures' are whole.
	var want [4]protocolJSON
	for p, name := range []string{"tcp", "udp", "icmp", "other"} {
		share := []float64{0.5, 0.3, 0.1, 0.1}[p]
		want[p].Protocol = name
		for k := range fixtureSources {
			for i := range fixtureWindows {
				want[p].Packets += uint64(math.Round(fixturePackets(k, i) * share))
				want[p].Bytes += uint64(math.Round(fixturePackets(k, i) * share * 100))
			}
		}
	}
	if !slices.Equal(out.Protocols, want[:]) {
		t.Fatalf("protocols %+v, want %+v", out.Protocols, want)
	}
	// A range holding only the first window.
	f.getJSON(t, fmt.Sprintf("/api/protocols?from=%d&to=%d", base.Unix(), base.Add(5*time.Second).Unix()), http.StatusOK, &out)
	var first float64
	for k := range fixtureSources {
		first += fixturePackets(k, 0)
	}
	if out.Protocols[0].Packets != uint64(first*0.5) {
		t.Fatalf("first window tcp packets %d, want %v", out.Protocols[0].Packets, first*0.5)
	}
}

func TestTopSources(t *testing.T) {
	f := newFixture(t, nil)
	var out struct {
		By      string
		Sources []sourceJSON
	}
	f.getJSON(t, "/api/top-sources", http.StatusOK, &out)
	// Source k sends more the larger k is.
	if out.By != "bytes" || len(out.Sources) != 4 || out.Sources[0].Src != "2001:db8::1" || out.Sources[3].Src != "10.0.0.1" {
		t.Fatalf("top by bytes: %+v", out)
	}
	var pk float64
	for i := range fixtureWindows {
		pk += fixturePackets(3, i)
	}
	if out.Sources[0].Packets != uint64(pk) || out.Sources[0].Bytes != uint64(pk*100) {
		t.Fatalf("top source totals %+v, want %v packets", out.Sources[0], pk)
	}
	f.getJSON(t, "/api/top-sources?by=packets&limit=2", http.StatusOK, &out)
	if out.By != "packets" || len(out.Sources) != 2 || out.Sources[1].Src != "10.0.0.3" {
		t.Fatalf("top 2 by packets: %+v", out)
	}
}

type alertsJSON struct {
	Alerts     []alertJSONIn `json:"alerts"`
	NextCursor string        `json:"next_cursor"`
}

type alertJSONIn struct {
	ID            string          `json:"id"`
	Src           string          `json:"src"`
	Label         string          `json:"label"`
	Severity      string          `json:"severity"`
	Window        string          `json:"window"`
	End           time.Time       `json:"end"`
	Score         *float64        `json:"score"`
	RunnerUp      string          `json:"runner_up"`
	RunnerUpScore *float64        `json:"runner_up_score"`
	Detector      string          `json:"detector"`
	Details       json.RawMessage `json:"details"`
	TopFeatures   []struct {
		Name   string   `json:"name"`
		Value  *float64 `json:"value"`
		Weight *float64 `json:"weight"`
	} `json:"top_features"`
}

func TestAlertsPagination(t *testing.T) {
	f := newFixture(t, nil)
	var ids []string
	cursor := ""
	for page := 0; ; page++ {
		if page > fixtureAlerts {
			t.Fatal("pagination does not end")
		}
		var out alertsJSON
		path := "/api/alerts?limit=7"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		f.getJSON(t, path, http.StatusOK, &out)
		if len(out.Alerts) > 7 {
			t.Fatalf("page of %d", len(out.Alerts))
		}
		for _, a := range out.Alerts {
			ids = append(ids, a.ID)
		}
		if out.NextCursor == "" {
			break
		}
		cursor = out.NextCursor
	}
	if len(ids) != fixtureAlerts {
		t.Fatalf("%d alerts over all pages, want %d", len(ids), fixtureAlerts)
	}
	for i, id := range ids { // newest first, none twice
		if want := fmt.Sprintf("a%03d", fixtureAlerts-1-i); id != want {
			t.Fatalf("alert %d is %s, want %s", i, id, want)
		}
	}
}

func TestAlertsFilters(t *testing.T) {
	f := newFixture(t, nil)
	var out alertsJSON
	f.getJSON(t, "/api/alerts?severity=critical&label=portscan", http.StatusOK, &out)
	// i%4 == 3 and i%3 == 0: i = 3, 15, 27.
	if got := alertIDs(out); !slices.Equal(got, []string{"a027", "a015", "a003"}) {
		t.Fatalf("critical portscan: %v", got)
	}
	f.getJSON(t, "/api/alerts?src=10.0.0.2&limit=2", http.StatusOK, &out)
	if got := alertIDs(out); !slices.Equal(got, []string{"a029", "a025"}) || out.NextCursor == "" {
		t.Fatalf("src 10.0.0.2: %v cursor %q", got, out.NextCursor)
	}
	// The range is on the window end: alerts 0..2 end at base+30s..90s.
	f.getJSON(t, "/api/alerts?from="+url.QueryEscape(base.Format(time.RFC3339))+fmt.Sprintf("&to=%d", base.Add(90*time.Second).Unix()), http.StatusOK, &out)
	if got := alertIDs(out); !slices.Equal(got, []string{"a001", "a000"}) {
		t.Fatalf("range: %v", got)
	}
	a := out.Alerts[0]
	if a.Src != "10.0.0.2" || a.Label != "dos" || a.Severity != "medium" || a.Window != "30s" || a.Detector != "xgb" ||
		a.RunnerUp != "benign" || a.RunnerUpScore == nil || *a.RunnerUpScore != 0.1 || a.Score == nil || *a.Score != 0.51 ||
		string(a.Details) != `{"model":"v1"}` || len(a.TopFeatures) != 2 || a.TopFeatures[1].Value != nil || *a.TopFeatures[0].Value != 101 {
		t.Fatalf("alert a001 as JSON: %+v", a)
	}
}

func alertIDs(p alertsJSON) []string {
	var out []string
	for _, a := range p.Alerts {
		out = append(out, a.ID)
	}
	return out
}

func TestActiveAlertsEndpoint(t *testing.T) {
	f := newFixture(t, func(c *Config, _ *tuning) { c.ActiveFor = time.Minute })
	var out struct {
		ActiveFor string        `json:"active_for"`
		AsOf      *time.Time    `json:"as_of"`
		Total     int           `json:"total"`
		Alerts    []alertJSONIn `json:"alerts"`
	}
	f.getJSON(t, "/api/alerts/active", http.StatusOK, &out)
	if out.Total != 0 || out.AsOf != nil || out.ActiveFor != "1m0s" {
		t.Fatalf("before any alert: %+v", out)
	}
	for i := range fixtureAlerts {
		f.srv.PublishAlert(fixtureAlert(i))
	}
	f.getJSON(t, "/api/alerts/active", http.StatusOK, &out)
	// The newest window ends at base+15m; a minute back keeps alerts 27 to
	// 29 (ends 14m, 14m30s, 15m), of distinct (source, label) pairs.
	if got := alertIDs(alertsJSON{Alerts: out.Alerts}); !slices.Equal(got, []string{"a029", "a028", "a027"}) || out.Total != 3 ||
		out.AsOf == nil || !out.AsOf.Equal(base.Add(15*time.Minute)) {
		t.Fatalf("active: %v total %d as of %v", got, out.Total, out.AsOf)
	}
	f.getJSON(t, "/api/alerts/active?limit=1", http.StatusOK, &out)
	if len(out.Alerts) != 1 || out.Total != 3 {
		t.Fatalf("limit 1: %d alerts, total %d", len(out.Alerts), out.Total)
	}
}

func TestHealth(t *testing.T) {
	f := newFixture(t, nil)
	var h healthView
	f.getJSON(t, "/api/health", http.StatusOK, &h)
	if h.Status != statusOK || len(h.Reasons) != 0 || len(h.Plugins) != 3 || h.Plugins[1].Restarts != 2 || h.Plugins[1].State != host.StateRunning {
		t.Fatalf("healthy: %+v", h)
	}
	if h.Queues.Packets != 3 || h.Queues.Detectors["xgb"] != 4 || h.Queues.Sinks["pg"] != 2 || h.Drops.Total != 0 || h.Packets == 0 {
		t.Fatalf("queues and drops: %+v %+v", h.Queues, h.Drops)
	}

	f.stats.set(func(st *pipeline.Stats) {
		st.Plugins[1].State = host.StateRestarting
		st.Plugins[1].LastError = "pq: SELECT secret FROM x"
	})
	_, _, raw := f.get(t, "/api/health")
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	if h.Status != statusDegraded || len(h.Reasons) != 1 || !strings.Contains(h.Reasons[0], `"xgb" is restarting`) {
		t.Fatalf("restarting plugin: %+v", h)
	}
	if strings.Contains(string(raw), "SELECT") {
		t.Fatalf("health leaks a plugin's last error: %s", raw)
	}

	f.stats.set(func(st *pipeline.Stats) { st.Plugins[1].State = host.StateFailed })
	f.getJSON(t, "/api/health", http.StatusOK, &h)
	if h.Status != statusDegraded {
		t.Fatalf("failed plugin: %+v", h)
	}

	// Drops make the status degraded while they are recent.
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	f.srv.now = func() time.Time { return now }
	f.stats.set(func(st *pipeline.Stats) {
		st.Plugins[1].State = host.StateRunning
		st.Sinks[0].RawPacketsDropped = 7
		st.Aggregator.PacketsDropped = 5
		st.Captures = map[string]sdk.CaptureCounters{"replay": {KernelDrops: 11}}
		st.CaptureLost = 13
	})
	f.getJSON(t, "/api/health", http.StatusOK, &h)
	if h.Status != statusDegraded || !h.Drops.Recent || h.Drops.Sink != 7 || h.Drops.Sinks["pg"] != 7 || h.Drops.Aggregator != 5 ||
		h.Drops.Kernel != 11 || h.Drops.Capture != 13 || h.Drops.Total != 36 {
		t.Fatalf("drops: %+v", h)
	}
	now = now.Add(2 * time.Minute) // no new drops for longer than the window
	f.getJSON(t, "/api/health", http.StatusOK, &h)
	if h.Status != statusOK || h.Drops.Recent || h.Drops.Total != 36 {
		t.Fatalf("old drops: %+v", h)
	}
	f.stats.set(func(st *pipeline.Stats) { st.Sinks[0].RawPacketsDropped = 8 })
	f.getJSON(t, "/api/health", http.StatusOK, &h)
	if h.Status != statusDegraded || !h.Drops.Recent {
		t.Fatalf("new drop: %+v", h)
	}
}

// What a plugin reports itself (Stats) is shown per plugin, and a plugin
// that says it is unhealthy makes the sensor degraded.
func TestHealthReportedByPlugin(t *testing.T) {
	f := newFixture(t, nil)
	f.stats.set(func(st *pipeline.Stats) {
		st.Plugins[2].Reported = &sdk.Stats{Healthy: false, Message: "database 127.0.0.1:5432/ng unreachable",
			Counters: map[string]uint64{"write_errors": 3, "packets_written": 10},
			Process:  sdk.ProcessStats{Goroutines: 17, HeapLiveBytes: 5 << 20, RuntimeBytes: 12 << 20, GCCycles: 40}}
		st.Plugins[0].Reported = &sdk.Stats{Healthy: true}
	})
	var h healthView
	f.getJSON(t, "/api/health", http.StatusOK, &h)
	if h.Status != statusDegraded || len(h.Reasons) != 1 || !strings.Contains(h.Reasons[0], `sink plugin "pg" reports unhealthy: database 127.0.0.1:5432/ng unreachable`) {
		t.Fatalf("unhealthy sink: %+v", h)
	}
	pg, replay, xgb := h.Plugins[2], h.Plugins[0], h.Plugins[1]
	if pg.Healthy == nil || *pg.Healthy || pg.Counters["write_errors"] != 3 || pg.Process == nil ||
		pg.Process.Goroutines != 17 || pg.Process.HeapLiveBytes != 5<<20 || pg.Process.RuntimeBytes != 12<<20 {
		t.Fatalf("sink's report: %+v (process %+v)", pg, pg.Process)
	}
	if replay.Healthy == nil || !*replay.Healthy || xgb.Healthy != nil || xgb.Process != nil {
		t.Fatalf("healthy capture %+v, detector without a report %+v", replay, xgb)
	}

	_, _, body := f.get(t, "/metrics")
	for _, want := range []string{
		`netguardian_plugin_healthy{kind="sink",plugin="pg"} 0` + "\n",
		`netguardian_plugin_healthy{kind="capture",plugin="replay"} 1` + "\n",
		`netguardian_plugin_reported{counter="write_errors",kind="sink",plugin="pg"} 3` + "\n",
		`netguardian_plugin_goroutines{kind="sink",plugin="pg"} 17` + "\n",
		`netguardian_plugin_heap_live_bytes{kind="sink",plugin="pg"} 5.24288e+06` + "\n",
		`netguardian_plugin_runtime_bytes{kind="sink",plugin="pg"} 1.2582912e+07` + "\n",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(string(body), `plugin_healthy{kind="detector"`) {
		t.Error("a plugin that has not reported has a plugin_healthy series")
	}

	// Healthy again: the reason goes.
	f.stats.set(func(st *pipeline.Stats) { st.Plugins[2].Reported = &sdk.Stats{Healthy: true} })
	f.getJSON(t, "/api/health", http.StatusOK, &h)
	if h.Status != statusOK {
		t.Fatalf("recovered sink: %+v", h)
	}
}

func TestPlugins(t *testing.T) {
	f := newFixture(t, nil)
	var out struct{ Plugins []pluginJSON }
	code, _, raw := f.get(t, "/api/plugins")
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Plugins) != 3 {
		t.Fatalf("%d plugins", len(out.Plugins))
	}
	x := out.Plugins[1]
	if x.Name != "xgb" || x.Kind != sdk.KindDetector || x.Plugin != "detector-xgboost" || !slices.Equal(x.Windows, []string{"30s", "180s"}) ||
		!slices.Equal(x.Labels, []string{"benign", "portscan"}) || !slices.Equal(x.Features, []string{sdk.FeatureSYN, sdk.FeaturePackets}) ||
		len(x.Config) != 1 || x.Config[0].Name != "model" || !x.Config[0].Required {
		t.Fatalf("detector: %+v", x)
	}
	if c := out.Plugins[0].Config; len(c) != 2 || c[1].Default != 1.0 || c[1].Type != "number" {
		t.Fatalf("capture config: %+v", c)
	}
	if pg := out.Plugins[2]; !pg.ServesStore || !slices.Equal(pg.Records, []string{"features", "alerts"}) || !pg.Config[0].Sensitive {
		t.Fatalf("sink: %+v", pg)
	}
	if strings.Contains(string(raw), "secret") {
		t.Fatalf("a sensitive default is served: %s", raw)
	}
}

// TestBadParameters: every malformed parameter is a 400 naming it.
func TestBadParameters(t *testing.T) {
	f := newFixture(t, nil)
	long := strings.Repeat("x", maxTextParam+1)
	for _, c := range []struct{ path, param string }{
		{"/api/features?window=10s", "window"},
		{"/api/features?window=5", "window"},
		{"/api/features?window=3m0s", "window"},
		{"/api/features?src=10.0.0", "src"},
		{"/api/features?src=10.0.0.256", "src"},
		{"/api/features?src=fe80::1%25eth0", "src"},
		{"/api/features?src=host.example", "src"},
		{"/api/features?from=yesterday", "from"},
		{"/api/features?from=-5", "from"},
		{"/api/features?from=1.2.3", "from"},
		{"/api/features?to=2024-13-01T00:00:00Z", "to"},
		{"/api/features?to=2024-05-01", "to"},
		{"/api/features?to=99999999999999", "to"},
		{"/api/features?from=2024-05-01T10:00:10Z&to=2024-05-01T10:00:00Z", "from"},
		{"/api/features?from=1714557610&to=1714557600", "from"},
		{"/api/features?limit=0", "limit"},
		{"/api/features?limit=-1", "limit"},
		{"/api/features?limit=10001", "limit"},
		{"/api/features?limit=ten", "limit"},
		{"/api/features?limit=1&limit=2", "limit"},
		{"/api/features?windw=5s", "windw"},
		{"/api/protocols?from=noon", "from"},
		{"/api/protocols?from=1714557610&to=1714557600", "from"},
		{"/api/protocols?window=5s", "window"},
		{"/api/top-sources?by=flows", "by"},
		{"/api/top-sources?by=", ""}, // empty is absent: fine
		{"/api/top-sources?limit=1001", "limit"},
		{"/api/top-sources?to=soon", "to"},
		{"/api/alerts?severity=urgent", "severity"},
		{"/api/alerts?severity=HIGH", "severity"},
		{"/api/alerts?cursor=!!!", "cursor"},
		{"/api/alerts?cursor=AQ", "cursor"},
		{"/api/alerts?cursor=" + long, "cursor"},
		{"/api/alerts?label=" + long, "label"},
		{"/api/alerts?src=::1::2", "src"},
		{"/api/alerts?limit=1001", "limit"},
		{"/api/alerts?from=2024-05-01T10:00:10Z&to=2024-05-01T10:00:00Z", "from"},
		{"/api/alerts?sort=asc", "sort"},
		{"/api/alerts/active?limit=0", "limit"},
		{"/api/health?verbose=1", "verbose"},
		{"/api/plugins?kind=sink", "kind"},
		{"/api/openapi.json?format=yaml", "format"},
		{"/ws/dashboard?x=1", "x"},
		{"/api/alerts?label=%zz", "?"}, // malformed: no parameter to name
	} {
		t.Run(c.path, func(t *testing.T) {
			code, _, body := f.get(t, c.path)
			if c.param == "" {
				if code != http.StatusOK {
					t.Fatalf("status %d: %s", code, body)
				}
				return
			}
			var e apiError
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("status %d, body not JSON: %s", code, body)
			}
			if c.param == "?" {
				if code != http.StatusBadRequest || !strings.Contains(e.Message, "malformed") {
					t.Fatalf("status %d, %+v; want 400 malformed", code, e)
				}
				return
			}
			if code != http.StatusBadRequest || e.Param != c.param || e.Message == "" {
				t.Fatalf("status %d, %+v; want 400 naming %q", code, e, c.param)
			}
		})
	}
}

// faultyStore is the real memory store with failures injected, to see
// what clients get when the store breaks.
type faultyStore struct {
	*store.Memory
	err   error
	panic bool
}

func (s *faultyStore) QueryFeatures(ctx context.Context, q sdk.FeatureQuery) (*sdk.FeatureBatch, error) {
	if s.panic {
		panic("secret stack detail")
	}
	return nil, s.err
}

func (s *faultyStore) QueryAlerts(ctx context.Context, q sdk.AlertQuery) (sdk.AlertPage, error) {
	return sdk.AlertPage{}, s.err
}

func TestStoreErrors(t *testing.T) {
	fs := &faultyStore{Memory: store.NewMemory(store.Options{}), err: errors.New(`pq: relation "detected_alerts" does not exist: SELECT * FROM detected_alerts`)}
	f := newFixture(t, func(c *Config, _ *tuning) { c.Store = fs })
	for _, path := range []string{"/api/features", "/api/alerts"} {
		code, h, body := f.get(t, path)
		if code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
			t.Fatalf("%s: status %d, want 503", path, code)
		}
		if strings.Contains(string(body), "SELECT") || strings.Contains(string(body), "pq") || !strings.Contains(string(body), `"error"`) {
			t.Fatalf("%s: body %s", path, body)
		}
	}
	// A bad cursor from the store is still the client's mistake.
	fs.err = fmt.Errorf("query alerts: %w", sdk.ErrBadCursor)
	code, _, body := f.get(t, "/api/alerts?cursor=abc")
	if code != http.StatusBadRequest || !strings.Contains(string(body), `"parameter":"cursor"`) {
		t.Fatalf("bad cursor: %d %s", code, body)
	}
	// A panic is a bare 500 without the panic's text or a stack.
	fs.panic = true
	code, _, body = f.get(t, "/api/features")
	if code != http.StatusInternalServerError || strings.Contains(string(body), "secret") || strings.Contains(string(body), "goroutine") {
		t.Fatalf("panic: %d %s", code, body)
	}
}

func TestRoutingErrors(t *testing.T) {
	f := newFixture(t, nil)
	code, h, body := f.get(t, "/api/nope")
	if code != http.StatusNotFound || !strings.HasPrefix(h.Get("Content-Type"), "application/json") || !strings.Contains(string(body), `"error":"not found"`) {
		t.Fatalf("unknown route: %d %s", code, body)
	}
	code, _, _ = f.get(t, "/assets/missing.js")
	if code != http.StatusNotFound {
		t.Fatalf("missing asset: %d", code)
	}
	res, err := f.http.Client().Post(f.http.URL+"/api/alerts", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("POST with a body: %d", res.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodDelete, f.http.URL+"/api/alerts", nil)
	res, err = f.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") == "" {
		t.Fatalf("DELETE: %d", res.StatusCode)
	}
}

func TestRateLimit(t *testing.T) {
	// A refill of one request per 1000 s: the burst is all the test gets.
	f := newFixture(t, func(c *Config, _ *tuning) { c.RateLimit, c.RateBurst = 0.001, 3 })
	for i := range 3 {
		if code, _, body := f.get(t, "/api/health"); code != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, code, body)
		}
	}
	code, h, body := f.get(t, "/api/health")
	if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" || !strings.Contains(string(body), "too many requests") {
		t.Fatalf("past the burst: %d %s", code, body)
	}
}

func TestDashboardAssets(t *testing.T) {
	f := newFixture(t, nil)
	code, h, body := f.get(t, "/")
	if code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !strings.Contains(string(body), `id="chart-pps"`) {
		t.Fatalf("index: %d %s", code, h.Get("Content-Type"))
	}
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || h.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("headers %v", h)
	}
	code, h, body = f.get(t, "/assets/app.js")
	if code != http.StatusOK || !strings.Contains(h.Get("Content-Type"), "javascript") || len(body) < 10_000 || !strings.Contains(string(body), "Leon Sorokin") || !strings.Contains(string(body), "chart-pps") {
		t.Fatalf("app.js: %d %s, %d bytes", code, h.Get("Content-Type"), len(body))
	}
	code, h, _ = f.get(t, "/assets/app.css")
	if code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/css") {
		t.Fatalf("app.css: %d", code)
	}
	// Extra parameters on the page are ignored (links carry them).
	if code, _, _ = f.get(t, "/?utm_source=mail"); code != http.StatusOK {
		t.Fatalf("index with a parameter: %d", code)
	}
}

func TestParseTime(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2024-05-01T10:00:00Z", base, true},
		{"2024-05-01T12:00:00+02:00", base, true},
		{"2024-05-01T10:00:00.25Z", base.Add(250 * time.Millisecond), true},
		{"1714557600", base, true},
		{"1714557600.5", base.Add(500 * time.Millisecond), true},
		{"0", time.Unix(0, 0).UTC(), true},
		{"", time.Time{}, false},
		{"1e9", time.Time{}, false},
		{"0x10", time.Time{}, false},
		{"NaN", time.Time{}, false},
		{"2024-05-01 10:00:00", time.Time{}, false},
	} {
		got, ok := parseTime(c.in)
		if ok != c.ok || !got.Equal(c.want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}
