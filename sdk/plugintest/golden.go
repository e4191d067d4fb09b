package plugintest

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/netguardian/netguardian/sdk"
)

// UpdateEnv is the environment variable that, set to 1 or true, makes
// Golden rewrite golden files, like the -update flag.
const UpdateEnv = "NG_UPDATE_GOLDEN"

func init() {
	// `go test ./... -args -update` needs the flag defined in every test
	// binary that uses Golden. A test package that defines its own -update
	// keeps it: Golden reads whichever is defined.
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite plugintest golden files (testdata/*.golden.json) with the current results")
	}
}

func updating() bool {
	switch strings.ToLower(os.Getenv(UpdateEnv)) {
	case "1", "true", "yes":
		return true
	}
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

var goldenName = regexp.MustCompile(`^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$`)

// GoldenPath is the file Golden compares with: testdata/NAME.golden.json,
// relative to the test's directory.
func GoldenPath(name string) string {
	return filepath.Join("testdata", filepath.FromSlash(name)+".golden.json")
}

// Golden compares alerts with testdata/NAME.golden.json. The comparison is
// on a normalized JSON rendering (RenderAlerts): alerts in a stable order,
// without the fields the core fills per run (ID, Time, Sensor), numbers
// to ten significant digits. With -update (`go test -run TestX -args
// -update`) or NG_UPDATE_GOLDEN=1 it writes the file instead. A missing
// file or a difference fails the test with the first differing line.
func Golden(t TB, name string, alerts []sdk.Alert) {
	t.Helper()
	if !goldenName.MatchString(name) || strings.Contains(name, "..") {
		t.Errorf("plugintest.Golden: name %q: use letters, digits, '.', '_', '-' and '/' between parts (no '..')", name)
		return
	}
	got, err := RenderAlerts(alerts)
	if err != nil {
		t.Errorf("plugintest.Golden: %v", err)
		return
	}
	path := GoldenPath(name)
	if updating() {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Errorf("plugintest.Golden: %v", err)
			return
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Errorf("plugintest.Golden: %v", err)
			return
		}
		t.Logf("plugintest.Golden: wrote %s (%d alerts)", path, len(alerts))
		return
	}
	want, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		t.Errorf("plugintest.Golden: %s does not exist; create it with `go test -run '%s' -args -update` (or %s=1) and review it", path, t.Name(), UpdateEnv)
		return
	}
	if err != nil {
		t.Errorf("plugintest.Golden: %v", err)
		return
	}
	want = bytes.ReplaceAll(want, []byte("\r\n"), []byte("\n"))
	if !bytes.Equal(got, want) {
		t.Errorf("plugintest.Golden: %d alerts differ from %s:\n%s\nIf the change is intended, rewrite it with `go test -run '%s' -args -update` (or %s=1).",
			len(alerts), path, firstDifference(want, got), t.Name(), UpdateEnv)
	}
}

// goldenAlert is an alert as golden files hold it.
type goldenAlert struct {
	Src           string          `json:"src,omitempty"`
	Window        string          `json:"window,omitempty"`
	Start         string          `json:"start,omitempty"`
	End           string          `json:"end,omitempty"`
	Row           int             `json:"row"`
	Detector      string          `json:"detector,omitempty"`
	Label         string          `json:"label"`
	Score         any             `json:"score"`
	Severity      string          `json:"severity,omitempty"`
	RunnerUp      string          `json:"runner_up,omitempty"`
	RunnerUpScore any             `json:"runner_up_score,omitempty"`
	TopFeatures   []goldenFeature `json:"top_features,omitempty"`
	Details       any             `json:"details,omitempty"`
}

type goldenFeature struct {
	Name   string `json:"name"`
	Value  any    `json:"value"`
	Weight any    `json:"weight,omitempty"`
}

// num renders a float for a golden file: ten significant digits, and the
// names of the values JSON has no numbers for.
func num(v float64) any {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return json.Number(strconv.FormatFloat(v, 'g', 10, 64))
}

// RenderAlerts is the normalized JSON rendering Golden compares: sorted by
// window start, window size, source, label, row and score; ID, Time and
// Sensor left out; floats to ten significant digits (NaN and infinities as
// strings); Details re-encoded with sorted keys.
func RenderAlerts(alerts []sdk.Alert) ([]byte, error) {
	sorted := append([]sdk.Alert(nil), alerts...)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		switch {
		case !a.Start.Equal(b.Start):
			return a.Start.Before(b.Start)
		case a.Window != b.Window:
			return a.Window < b.Window
		case a.Src != b.Src:
			return a.Src.Less(b.Src)
		case a.Label != b.Label:
			return a.Label < b.Label
		case a.Row != b.Row:
			return a.Row < b.Row
		}
		return a.Score < b.Score
	})
	out := make([]goldenAlert, 0, len(sorted))
	for i, a := range sorted {
		g := goldenAlert{Row: a.Row, Detector: a.Detector, Label: a.Label, Score: num(a.Score), Severity: string(a.Severity), RunnerUp: a.RunnerUp}
		if a.Src.IsValid() {
			g.Src = a.Src.String()
		}
		if a.Window != 0 {
			g.Window = a.Window.String()
		}
		if !a.Start.IsZero() {
			g.Start = a.Start.UTC().Format(time.RFC3339Nano)
		}
		if !a.End.IsZero() {
			g.End = a.End.UTC().Format(time.RFC3339Nano)
		}
		if a.RunnerUp != "" || a.RunnerUpScore != 0 {
			g.RunnerUpScore = num(a.RunnerUpScore)
		}
		for _, f := range a.TopFeatures {
			gf := goldenFeature{Name: f.Name, Value: num(f.Value)}
			if f.Weight != 0 {
				gf.Weight = num(f.Weight)
			}
			g.TopFeatures = append(g.TopFeatures, gf)
		}
		if len(a.Details) > 0 {
			if err := json.Unmarshal(a.Details, &g.Details); err != nil {
				return nil, fmt.Errorf("alert %d: Details is not JSON: %w", i, err)
			}
		}
		out = append(out, g)
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// firstDifference shows where got departs from want: the first differing
// line with two lines of context.
func firstDifference(want, got []byte) string {
	wl := strings.Split(string(want), "\n")
	gl := strings.Split(string(got), "\n")
	i := 0
	for i < len(wl) && i < len(gl) && wl[i] == gl[i] {
		i++
	}
	var b strings.Builder
	from := max(0, i-2)
	fmt.Fprintf(&b, "first difference at line %d (want %d lines, got %d):\n", i+1, len(wl), len(gl))
	for j := from; j < i; j++ {
		fmt.Fprintf(&b, "    %s\n", wl[j])
	}
	for j := i; j < min(i+3, len(wl)); j++ {
		fmt.Fprintf(&b, "  - %s\n", wl[j])
	}
	for j := i; j < min(i+3, len(gl)); j++ {
		fmt.Fprintf(&b, "  + %s\n", gl[j])
	}
	return strings.TrimRight(b.String(), "\n")
}
