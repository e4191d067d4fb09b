package sdk

import (
	"encoding/json"
	"math"
	"net/netip"
	"time"
)

var nan = math.NaN()

// Severity of an alert.
type Severity string

const (
	SeverityLow      Severity = "low"
	SeverityMedium   Severity = "medium"
	SeverityHigh     Severity = "high"
	SeverityCritical Severity = "critical"
)

// ParseSeverity returns the severity called s, and false if there is none.
func ParseSeverity(s string) (Severity, bool) {
	switch Severity(s) {
	case SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical:
		return Severity(s), true
	}
	return "", false
}

// Alert is one detector's verdict on one (source, window).
type Alert struct {
	// Row is the index of the FeatureBatch row the alert is about. Detectors
	// set it; the core fills Src, Window, Start and End from that row.
	Row           int
	Label         string
	Score         float64
	Severity      Severity
	RunnerUp      string
	RunnerUpScore float64
	// TopFeatures are the features behind the decision, strongest first.
	TopFeatures []FeatureValue
	// Details is free-form JSON the detector wants stored with the alert.
	Details json.RawMessage

	// Filled by the core. ID is a hash of (Sensor, Detector, Label, Src,
	// Window, Start) and Time is Start + Window (packet time), so the same
	// verdict on the same window is the same alert however often it is
	// computed: stores keep one per ID.
	ID       string
	Sensor   string
	Detector string
	Src      netip.Addr
	Window   time.Duration
	Start    time.Time
	End      time.Time
	Time     time.Time
}

// FeatureValue is a feature's value and its weight in a decision.
type FeatureValue struct {
	Name   string
	Value  float64
	Weight float64
}

// NewAlert starts an alert for row i of b with a label and score; the
// severity defaults to medium.
func NewAlert(i int, label string, score float64) Alert {
	return Alert{Row: i, Label: label, Score: score, Severity: SeverityMedium}
}

// WithFeatures attaches the named features' values of row i as the reason.
func (a Alert) WithFeatures(b *FeatureBatch, names ...string) Alert {
	for _, n := range names {
		if v, ok := b.Value(a.Row, n); ok {
			a.TopFeatures = append(a.TopFeatures, FeatureValue{Name: n, Value: v})
		}
	}
	return a
}
