package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/netguardian/netguardian/internal/pgtest"
)

var (
	e2eOnce  sync.Once
	e2eErr   error
	e2eNG    string // the netguardian binary
	e2ePlugs string // its plugin_dir (capture-pcap)
	e2eDet   string // the test detector
)

// buildE2E builds the netguardian command, capture-pcap and the test
// detector next to the plugin under test.
func buildE2E(t testing.TB) {
	t.Helper()
	e2eOnce.Do(func() {
		e2eNG = filepath.Join(buildDir, "netguardian")
		e2ePlugs = filepath.Join(buildDir, "plugins")
		e2eDet = filepath.Join(buildDir, "busy-detector")
		for _, b := range [][2]string{
			{e2eNG, "../../cmd/netguardian"},
			{filepath.Join(e2ePlugs, "capture-pcap"), "../../plugins/capture-pcap"},
			{e2eDet, "./testdata/detector"},
		} {
			if out, err := exec.Command("go", "build", "-o", b[0], b[1]).CombinedOutput(); err != nil {
				e2eErr = fmt.Errorf("build %s: %v\n%s", b[1], err, out)
				return
			}
		}
	})
	if e2eErr != nil {
		t.Fatal(e2eErr)
	}
}

// analyzeReport is the part of `netguardian analyze -json` the test reads.
type analyzeReport struct {
	Packets uint64            `json:"packets"`
	Windows map[string]uint64 `json:"windows"`
	Alerts  []struct {
		Label string `json:"label"`
		Src   string `json:"src"`
		Count int    `json:"count"`
	} `json:"alerts"`
}

// TestAnalyzeEndToEnd runs `netguardian analyze` with this sink (raw
// packets on) and a detector over real captures, and compares what landed
// in PostgreSQL with the report and the features CSV the core wrote from
// the same windows: every packet, every window field by field, every
// alert with its details.
func TestAnalyzeEndToEnd(t *testing.T) {
	t.Parallel()
	buildE2E(t)
	files := []string{"../../examples/pcaps/sample.pcap"}
	more, _ := filepath.Glob("../capture-pcap/testdata/*.pcap")
	files = append(files, more...)
	if len(files) < 4 {
		t.Fatalf("captures: %v; want sample.pcap and capture-pcap's testdata", files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			analyzeOne(t, f)
		})
	}
}

func analyzeOne(t *testing.T, capture string) {
	srv := pgtest.Start(t)
	dir := t.TempDir()
	sensor := "e2e-" + strings.TrimSuffix(filepath.Base(capture), ".pcap")
	cfg := fmt.Sprintf(`sensor {
  name       = %q
  plugin_dir = %q
}
detector "busy" {
  plugin = %q
  config {
    min_packets = 20
  }
}
sink "pg" {
  plugin = %q
  config {
    url            = env("NG_E2E_DATABASE_URL")
    raw_packets    = true
    flush_interval = "50ms" # batches wait to share transactions: nothing may be lost to it
  }
}
`, sensor, e2ePlugs, e2eDet, pluginPath)
	cfgPath := filepath.Join(dir, "netguardian.hcl")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	csvPath := filepath.Join(dir, "features.csv")
	cmd := exec.Command(e2eNG, "analyze", "-config", cfgPath, "-json", "-features-csv", csvPath, capture)
	cmd.Env = append(os.Environ(), "NG_E2E_DATABASE_URL="+srv.URL())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("netguardian analyze: %v\n%s", err, stderr.String())
	}
	if pw := srv.Password(); pw != "" && strings.Contains(stdout.String()+stderr.String(), pw) {
		t.Errorf("netguardian's output contains the database password")
	}
	var rep analyzeReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, stdout.String())
	}
	if rep.Packets == 0 {
		t.Fatalf("the report counts no packets")
	}
	c := db(t, srv.URL())

	// Every packet, with its frame (the sink asked for frames).
	if n := count(t, c, "SELECT count(*) FROM raw_packets WHERE sensor = $1", sensor); uint64(n) != rep.Packets {
		t.Errorf("raw_packets holds %d rows, the report counts %d packets", n, rep.Packets)
	}
	if n := count(t, c, "SELECT count(*) FROM raw_packets WHERE frame IS NULL OR length(frame) = 0"); n != 0 {
		t.Errorf("%d packets stored without their frame", n)
	}

	// Every window, field by field, as the core wrote it to the CSV.
	checkFeaturesCSV(t, c, csvPath, rep)

	// Every alert, with its details and top features.
	var want int64
	for _, a := range rep.Alerts {
		want += int64(a.Count)
		if n := count(t, c, "SELECT count(*) FROM detected_alerts WHERE label = $1 AND src = $2::inet AND sensor = $3", a.Label, a.Src, sensor); n != int64(a.Count) {
			t.Errorf("alerts %s of %s: %d stored, the report counts %d", a.Label, a.Src, n, a.Count)
		}
	}
	if n := count(t, c, "SELECT count(*) FROM detected_alerts"); n != want {
		t.Errorf("detected_alerts holds %d rows, the report counts %d", n, want)
	}
	if n := count(t, c, `SELECT count(*) FROM detected_alerts WHERE detector = 'busy' AND details->>'rule' = 'packets >= min_packets'
		AND details->>'note' = 'é ✓' AND (details->>'packets')::float8 >= 20 AND top_features->1->>'value' = 'NaN'
		AND window_end > window_start AND severity = 'high' AND runner_up = 'benign'`); n != want {
		t.Errorf("%d of %d alerts stored with their details, top features and window", n, want)
	}
	t.Logf("%s: %d packets, %v windows, %d alerts", filepath.Base(capture), rep.Packets, rep.Windows, want)
}

func checkFeaturesCSV(t *testing.T, c *pgx.Conn, csvPath string, rep analyzeReport) {
	t.Helper()
	f, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) < 2 {
		t.Fatalf("features CSV has %d lines", len(recs))
	}
	header, rows := recs[0], recs[1:]
	const fixed = 7 // sensor,window_s,src,start,end,partial,estimated
	names := header[fixed:]
	var total uint64
	for _, n := range rep.Windows {
		total += n
	}
	if uint64(len(rows)) != total {
		t.Errorf("CSV has %d windows, the report %d", len(rows), total)
	}
	// The database's rows in the CSV's shape.
	cols := "sensor, window_size::text, host(src_ip), floor(extract(epoch FROM window_start))::bigint::text, " +
		"floor(extract(epoch FROM window_end))::bigint::text, partial::text, estimated::text"
	for _, n := range names {
		cols += ", " + n
	}
	dbRows, err := c.Query(t.Context(), "SELECT "+cols+" FROM aggregated_features")
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string][]any{}
	for dbRows.Next() {
		v, err := dbRows.Values()
		if err != nil {
			t.Fatal(err)
		}
		key := fmt.Sprintf("%v|%v|%v|%v", v[0], v[1], v[2], v[3])
		if _, dup := stored[key]; dup {
			t.Errorf("window %s stored twice", key)
		}
		stored[key] = v
	}
	if err := dbRows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(stored) != len(rows) {
		t.Errorf("aggregated_features holds %d windows, the CSV %d", len(stored), len(rows))
	}
	bad := 0
	for _, r := range rows {
		key := strings.Join(r[:4], "|")
		v, ok := stored[key]
		if !ok {
			t.Errorf("window %s of the CSV is not stored", key)
			continue
		}
		var diffs []string
		for i := 4; i < fixed; i++ {
			if v[i].(string) != r[i] {
				diffs = append(diffs, fmt.Sprintf("%s %v, CSV %s", header[i], v[i], r[i]))
			}
		}
		for j, n := range names {
			cell, got := r[fixed+j], v[fixed+j]
			switch {
			case cell == "" && got != nil:
				diffs = append(diffs, fmt.Sprintf("%s = %v, CSV missing", n, got))
			case cell != "":
				want, err := strconv.ParseFloat(cell, 64)
				g, isF := got.(float64)
				if err != nil || !isF || math.Float64bits(g) != math.Float64bits(want) {
					diffs = append(diffs, fmt.Sprintf("%s = %v, CSV %s", n, got, cell))
				}
			}
		}
		if len(diffs) > 0 {
			if bad++; bad <= 5 {
				t.Errorf("window %v: %s", r[:4], strings.Join(diffs, "; "))
			}
		}
	}
}
