package api

import (
	"bytes"
	"encoding/json"
	"math"
	"net/netip"
	"strconv"
	"time"

	"github.com/netguardian/netguardian/sdk"
)

// num is a float64 that encodes NaN and infinities as null, which JSON
// cannot otherwise carry (a missing feature is NaN).
type num float64

func (n num) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return json.Marshal(f)
}

// addrString writes an address, or "" for the invalid one.
func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

type featuresResponse struct {
	Window string       `json:"window"`
	Names  []string     `json:"names"`
	Rows   []featureRow `json:"rows"`
}

// featureRow encodes one window with its features by name, in the
// batch's order (a map would sort them).
type featureRow struct {
	names []string
	row   *sdk.FeatureRow
}

func flagNames(f sdk.WindowFlags) []string {
	out := []string{}
	if f&sdk.WindowPartial != 0 {
		out = append(out, "partial")
	}
	if f&sdk.WindowEstimated != 0 {
		out = append(out, "estimated")
	}
	return out
}

func (r featureRow) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	head, err := json.Marshal(struct {
		Src    string    `json:"src"`
		Sensor string    `json:"sensor,omitempty"`
		Start  time.Time `json:"start"`
		End    time.Time `json:"end"`
		Flags  []string  `json:"flags"`
	}{addrString(r.row.Src), r.row.Sensor, r.row.Start.UTC(), r.row.End.UTC(), flagNames(r.row.Flags)})
	if err != nil {
		return nil, err
	}
	b.Write(head[:len(head)-1]) // reopen the object to append the features
	b.WriteString(`,"features":{`)
	for i, n := range r.names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(n)) // feature names are ASCII identifiers
		b.WriteByte(':')
		v := math.NaN()
		if i < len(r.row.Values) {
			v = r.row.Values[i]
		}
		enc, _ := num(v).MarshalJSON()
		b.Write(enc)
	}
	b.WriteString("}}")
	return b.Bytes(), nil
}

type protocolJSON struct {
	Protocol string `json:"protocol"`
	Packets  uint64 `json:"packets"`
	Bytes    uint64 `json:"bytes"`
}

type sourceJSON struct {
	Src     string `json:"src"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

type featureValueJSON struct {
	Name   string `json:"name"`
	Value  num    `json:"value"`
	Weight num    `json:"weight"`
}

type alertJSON struct {
	ID            string             `json:"id"`
	Sensor        string             `json:"sensor,omitempty"`
	Detector      string             `json:"detector"`
	Src           string             `json:"src"`
	Window        string             `json:"window"`
	Start         time.Time          `json:"start"`
	End           time.Time          `json:"end"`
	Time          time.Time          `json:"time"`
	Label         string             `json:"label"`
	Score         num                `json:"score"`
	Severity      sdk.Severity       `json:"severity"`
	RunnerUp      string             `json:"runner_up,omitempty"`
	RunnerUpScore *num               `json:"runner_up_score,omitempty"`
	TopFeatures   []featureValueJSON `json:"top_features"`
	Details       json.RawMessage    `json:"details,omitempty"`
}

func toAlertJSON(a sdk.Alert) alertJSON {
	out := alertJSON{
		ID: a.ID, Sensor: a.Sensor, Detector: a.Detector, Src: addrString(a.Src), Window: fmtWindow(a.Window),
		Start: a.Start.UTC(), End: a.End.UTC(), Time: a.Time.UTC(), Label: a.Label, Score: num(a.Score), Severity: a.Severity,
		RunnerUp: a.RunnerUp, TopFeatures: make([]featureValueJSON, len(a.TopFeatures)),
	}
	if a.RunnerUp != "" {
		r := num(a.RunnerUpScore)
		out.RunnerUpScore = &r
	}
	for i, f := range a.TopFeatures {
		out.TopFeatures[i] = featureValueJSON{Name: f.Name, Value: num(f.Value), Weight: num(f.Weight)}
	}
	// Details come from a plugin: invalid JSON would fail the whole response.
	if len(a.Details) > 0 && json.Valid(a.Details) {
		out.Details = a.Details
	}
	return out
}

func toAlertsJSON(as []sdk.Alert) []alertJSON {
	out := make([]alertJSON, len(as))
	for i, a := range as {
		out[i] = toAlertJSON(a)
	}
	return out
}

type alertsResponse struct {
	Alerts     []alertJSON `json:"alerts"`
	NextCursor string      `json:"next_cursor,omitempty"`
}

type activeResponse struct {
	ActiveFor string      `json:"active_for"`
	AsOf      *time.Time  `json:"as_of"` // null until an alert or packet was seen
	Total     int         `json:"total"`
	Alerts    []alertJSON `json:"alerts"`
}

type attributeJSON struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Required    bool   `json:"required"`
	Default     any    `json:"default,omitempty"`
	Description string `json:"description,omitempty"`
	Sensitive   bool   `json:"sensitive,omitempty"`
}

type pluginJSON struct {
	Name                 string          `json:"name"`
	Kind                 sdk.Kind        `json:"kind"`
	Plugin               string          `json:"plugin"`
	Version              string          `json:"version"`
	Config               []attributeJSON `json:"config"`
	Features             []string        `json:"features,omitempty"`
	Windows              []string        `json:"windows,omitempty"`
	Labels               []string        `json:"labels,omitempty"`
	Records              []string        `json:"records,omitempty"`
	WantsFrames          bool            `json:"wants_frames,omitempty"`
	ServesStore          bool            `json:"serves_store,omitempty"`
	FeatureSchemaVersion uint32          `json:"feature_schema_version"`
	SDKVersion           string          `json:"sdk_version"`
}

func toPluginJSON(p PluginInfo) pluginJSON {
	in := p.Info
	out := pluginJSON{
		Name: p.Name, Kind: in.Kind, Plugin: in.Name, Version: in.Version, Config: []attributeJSON{},
		Features: in.Features, Labels: in.Labels, WantsFrames: in.WantsFrames, ServesStore: in.ServesStore,
		FeatureSchemaVersion: in.FeatureSchemaVersion, SDKVersion: in.SDKVersion,
	}
	for _, a := range in.Config {
		at := attributeJSON{Name: a.Name, Type: string(a.Type), Required: a.Required, Description: a.Description, Sensitive: a.Sensitive}
		if !a.Sensitive { // a sensitive attribute's default may be a credential
			at.Default = jsonSafe(a.Default)
		}
		out.Config = append(out.Config, at)
	}
	for _, w := range in.Windows {
		out.Windows = append(out.Windows, fmtWindow(w))
	}
	for _, r := range in.Records {
		out.Records = append(out.Records, string(r))
	}
	return out
}

// jsonSafe drops a default JSON cannot encode (a NaN, a channel...), so a
// plugin's odd schema cannot fail /api/plugins.
func jsonSafe(v any) any {
	if v == nil {
		return nil
	}
	if d, ok := v.(time.Duration); ok {
		return d.String()
	}
	if _, err := json.Marshal(v); err != nil {
		return nil
	}
	return v
}
