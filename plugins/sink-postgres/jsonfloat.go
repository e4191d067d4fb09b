package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/netguardian/netguardian/sdk"
)

// jsonFloat is a float64 that survives JSON and jsonb exactly: a number
// where JSON has one (shortest form that parses back to the same bits),
// else one of the strings "NaN", "+Inf", "-Inf" and "-0" (jsonb's numeric
// has no negative zero).
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	switch {
	case math.IsNaN(v):
		return []byte(`"NaN"`), nil
	case math.IsInf(v, 1):
		return []byte(`"+Inf"`), nil
	case math.IsInf(v, -1):
		return []byte(`"-Inf"`), nil
	case v == 0 && math.Signbit(v):
		return []byte(`"-0"`), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
}

func (f *jsonFloat) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		switch s {
		case "NaN":
			*f = jsonFloat(math.NaN())
		case "+Inf", "Inf":
			*f = jsonFloat(math.Inf(1))
		case "-Inf":
			*f = jsonFloat(math.Inf(-1))
		case "-0":
			*f = jsonFloat(math.Copysign(0, -1))
		default:
			return fmt.Errorf("float %q", s)
		}
		return nil
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("float %s: %w", b, err)
	}
	*f = jsonFloat(v)
	return nil
}

// topFeature is an alert's feature as stored in detected_alerts.top_features.
type topFeature struct {
	Name   string    `json:"name"`
	Value  jsonFloat `json:"value"`
	Weight jsonFloat `json:"weight"`
}

func encodeTopFeatures(fs []sdk.FeatureValue) ([]byte, error) {
	if len(fs) == 0 {
		return nil, nil
	}
	out := make([]topFeature, len(fs))
	for i, f := range fs {
		out[i] = topFeature{Name: cleanText(f.Name), Value: jsonFloat(f.Value), Weight: jsonFloat(f.Weight)}
	}
	return json.Marshal(out)
}

func decodeTopFeatures(b []byte) ([]sdk.FeatureValue, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var in []topFeature
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("top_features: %w", err)
	}
	out := make([]sdk.FeatureValue, len(in))
	for i, f := range in {
		out[i] = sdk.FeatureValue{Name: f.Name, Value: float64(f.Value), Weight: float64(f.Weight)}
	}
	return out, nil
}

// encodeExtra encodes the features a row has no column for; missing (NaN)
// values are left out.
func encodeExtra(names []string, values []float64) ([]byte, error) {
	m := make(map[string]jsonFloat, len(names))
	for i, n := range names {
		if i < len(values) && !math.IsNaN(values[i]) {
			m[cleanText(n)] = jsonFloat(values[i])
		}
	}
	if len(m) == 0 {
		return nil, nil
	}
	return json.Marshal(m)
}

func decodeExtra(b []byte) (map[string]float64, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var m map[string]jsonFloat
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("extra: %w", err)
	}
	out := make(map[string]float64, len(m))
	for k, v := range m {
		out[k] = float64(v)
	}
	return out, nil
}

// cleanDetails makes an alert's details storable as jsonb, which holds any
// JSON value except invalid UTF-8 and the escape \u0000 in strings: those
// are replaced by U+FFFD rather than failing the batch forever. Empty and
// null details are NULL.
func cleanDetails(d json.RawMessage) ([]byte, error) {
	d = bytes.TrimSpace(d)
	if len(d) == 0 || string(d) == "null" {
		return nil, nil
	}
	if !json.Valid(d) {
		return nil, fmt.Errorf("details are not valid JSON")
	}
	d = bytes.ToValidUTF8(d, []byte("\uFFFD"))
	if !bytes.Contains(d, []byte(`\u0000`)) {
		return d, nil
	}
	dec := json.NewDecoder(bytes.NewReader(d))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("details: %w", err)
	}
	return json.Marshal(scrubNUL(v))
}

func scrubNUL(v any) any {
	switch x := v.(type) {
	case string:
		return cleanText(x)
	case []any:
		for i := range x {
			x[i] = scrubNUL(x[i])
		}
		return x
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[cleanText(k)] = scrubNUL(e)
		}
		return out
	}
	return v
}
