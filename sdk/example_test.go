package sdk_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/netguardian/netguardian/sdk"
)

// rstDetector flags sources that send many TCP resets. Its main would be
//
//	func main() { sdk.Serve(&rstDetector{MaxRST: 100}) }
type rstDetector struct {
	MaxRST float64 `ng:"max_rst" help:"RSTs per window from which a source is flagged"`
}

func (d *rstDetector) Describe() sdk.Info {
	return sdk.Info{
		Name: "detector-rst", Version: "1.0.0", Kind: sdk.KindDetector,
		Config:   sdk.SchemaOf(rstDetector{MaxRST: 100}),
		Features: []string{sdk.FeatureRST, sdk.FeaturePackets},
		Windows:  []time.Duration{30 * time.Second},
		Labels:   []string{"rst_storm"},
	}
}

func (d *rstDetector) Configure(_ context.Context, c sdk.Config) error {
	if err := c.Decode(d); err != nil {
		return err
	}
	if d.MaxRST <= 0 {
		return fmt.Errorf("max_rst = %v: must be positive", d.MaxRST)
	}
	return nil
}

func (d *rstDetector) Detect(_ context.Context, b *sdk.FeatureBatch) ([]sdk.Alert, error) {
	var alerts []sdk.Alert
	for i := range b.Rows {
		if rst, _ := b.Value(i, sdk.FeatureRST); rst >= d.MaxRST {
			alerts = append(alerts, sdk.NewAlert(i, "rst_storm", min(1, rst/(10*d.MaxRST))).WithFeatures(b, sdk.FeatureRST))
		}
	}
	return alerts, nil
}

// A detector scores closed windows. The core calls Describe, decodes the
// plugin's config block against the schema, calls Configure, then Detect
// with a batch of the features the detector listed, in that order. Here
// the calls are made directly; in a plugin, main calls sdk.Serve.
func Example_detector() {
	d := &rstDetector{}
	info := d.Describe()
	fmt.Println(info.Name, info.Kind, info.Features, info.Windows, info.Labels)
	for _, a := range info.Config {
		fmt.Printf("config %s (%s, default %v): %s\n", a.Name, a.Type, a.Default, a.Description)
	}

	if err := d.Configure(context.Background(), sdk.Config{JSON: []byte(`{"max_rst": 0}`)}); err != nil {
		fmt.Println("refused:", err)
	}
	if err := d.Configure(context.Background(), sdk.Config{JSON: []byte(`{"max_rst": 50}`)}); err != nil {
		panic(err)
	}

	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	batch := &sdk.FeatureBatch{Window: 30 * time.Second, Names: info.Features, Rows: []sdk.FeatureRow{
		{Src: netip.MustParseAddr("10.0.0.1"), Start: start, End: start.Add(30 * time.Second), Values: []float64{3, 400}},
		{Src: netip.MustParseAddr("10.0.0.2"), Start: start, End: start.Add(30 * time.Second), Values: []float64{250, 300}},
	}}
	alerts, err := d.Detect(context.Background(), batch)
	if err != nil {
		panic(err)
	}
	for _, a := range alerts {
		fmt.Printf("row %d (%s): %s score %.2f because %s = %v\n", a.Row, batch.Rows[a.Row].Src, a.Label, a.Score, a.TopFeatures[0].Name, a.TopFeatures[0].Value)
	}
	// Output:
	// detector-rst detector [rst_total packets_total] [30s] [rst_storm]
	// config max_rst (number, default 100): RSTs per window from which a source is flagged
	// refused: max_rst = 0: must be positive
	// row 1 (10.0.0.2): rst_storm score 0.50 because rst_total = 250
}

// countCapture makes packets. Its main would be
//
//	func main() { sdk.Serve(&countCapture{}) }
type countCapture struct{ n int }

func (c *countCapture) Describe() sdk.Info {
	return sdk.Info{Name: "capture-count", Version: "1.0.0", Kind: sdk.KindCapture, Config: sdk.SchemaOf(countCapture{})}
}

func (c *countCapture) Configure(context.Context, sdk.Config) error { c.n = 5; return nil }

func (c *countCapture) Capture(ctx context.Context, from uint64, w *sdk.PacketWriter) error {
	src, dst := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.80")
	for i := from; i < uint64(c.n); i++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		p := sdk.Packet{Timestamp: time.Date(2026, 1, 1, 0, 0, int(i), 0, time.UTC).UnixNano(),
			SrcPort: 40000, DstPort: 80, Protocol: sdk.ProtoTCP, TCPFlags: sdk.TCPSyn, Length: 60}
		p.SetAddrs(src, dst)
		if err := w.Write(&p); err != nil {
			return err
		}
	}
	return nil // the input ended
}

// A capture writes packets to a PacketWriter, which batches them for the
// core. Capture is told where to resume (from) when the core restarts a
// crashed capture. Here the writer prints the batches it would send.
func Example_capture() {
	c := &countCapture{}
	_ = c.Configure(context.Background(), sdk.Config{})
	rt := sdk.Runtime{BatchSize: 2} // the core sets pipeline.batch_size
	w := sdk.NewPacketWriter(rt, 1, func(b *sdk.PacketBatch) error {
		fmt.Printf("batch from index %d: %d packets, first %s -> %s:%d\n", b.FirstIndex, b.Len(), b.Src(0), b.Dst(0), b.DstPorts[0])
		return nil
	})
	if err := c.Capture(context.Background(), 1, w); err != nil {
		panic(err)
	}
	_ = w.Flush() // sdk.Serve flushes when Capture returns
	// Output:
	// batch from index 1: 2 packets, first 192.0.2.1 -> 192.0.2.80:80
	// batch from index 3: 2 packets, first 192.0.2.1 -> 192.0.2.80:80
}

// logSink prints alerts. Its main would be
//
//	func main() { sdk.Serve(&logSink{}) }
type logSink struct {
	Prefix string `ng:"prefix" help:"text before each line"`
	seen   map[uint64]bool
	out    strings.Builder
}

func (s *logSink) Describe() sdk.Info {
	return sdk.Info{Name: "sink-log", Version: "1.0.0", Kind: sdk.KindSink, Config: sdk.SchemaOf(logSink{Prefix: "alert"}),
		Records: []sdk.RecordKind{sdk.RecordAlerts}}
}

func (s *logSink) Configure(_ context.Context, c sdk.Config) error {
	s.Prefix, s.seen = "alert", map[uint64]bool{}
	return c.Decode(s)
}

// Write must be idempotent for a repeated Seq: after a failure the core
// sends the same batch again.
func (s *logSink) Write(_ context.Context, rec sdk.Records) error {
	if s.seen[rec.Seq] {
		return nil
	}
	for _, a := range rec.Alerts {
		fmt.Fprintf(&s.out, "%s: %s %s %s score %.2f\n", s.Prefix, a.Detector, a.Src, a.Label, a.Score)
	}
	s.seen[rec.Seq] = true
	return nil
}

// A sink receives batches of the records it asked for in Describe
// (packets, features, alerts). A batch counts as stored once Write returns
// nil; on an error the core keeps it and sends it again with the same Seq.
func Example_sink() {
	s := &logSink{}
	if err := s.Configure(context.Background(), sdk.Config{JSON: []byte(`{"prefix": "ALERT"}`)}); err != nil {
		panic(err)
	}
	batch := sdk.Records{Seq: 1, Alerts: []sdk.Alert{
		{Detector: "portscan", Src: netip.MustParseAddr("10.99.0.28"), Label: "port_scan", Score: 0.99},
	}}
	_ = s.Write(context.Background(), batch)
	_ = s.Write(context.Background(), batch) // re-sent after a lost ack: stored once
	fmt.Print(s.out.String())
	fmt.Println(s.Describe().Records)
	// Output:
	// ALERT: portscan 10.99.0.28 port_scan score 0.99
	// [alerts]
}

// SchemaOf derives a plugin's config schema from a struct's tags; Decode
// fills the struct from the block the core decoded, defaults applied.
func ExampleSchemaOf() {
	type config struct {
		Model    string        `ng:"model,required" help:"path of the model"`
		MinScore float64       `ng:"min_score" help:"lowest score that raises an alert"`
		Timeout  time.Duration `ng:"timeout"`
		Token    string        `ng:"token,sensitive"`
	}
	for _, a := range sdk.SchemaOf(config{MinScore: 0.8, Timeout: 5 * time.Second}) {
		fmt.Printf("%s %s required=%v default=%v sensitive=%v\n", a.Name, a.Type, a.Required, a.Default, a.Sensitive)
	}
	var c config
	err := sdk.Config{JSON: []byte(`{"model": "m.json", "min_score": 0.8, "timeout": "1m30s"}`)}.Decode(&c)
	fmt.Println(c.Model, c.MinScore, c.Timeout, err)
	// Output:
	// model string required=true default=<nil> sensitive=false
	// min_score number required=false default=0.8 sensitive=false
	// timeout duration required=false default=5s sensitive=false
	// token string required=false default=<nil> sensitive=true
	// m.json 0.8 1m30s <nil>
}

// NewVector resolves feature names once per batch, for detectors that read
// the same features from every row; a feature the batch lacks reads NaN.
func ExampleNewVector() {
	b := &sdk.FeatureBatch{Names: []string{sdk.FeatureSYN, sdk.FeaturePackets}, Rows: []sdk.FeatureRow{
		{Values: []float64{90, 100}},
		{Values: []float64{1, 50}},
	}}
	v := sdk.NewVector(b, sdk.FeaturePackets, sdk.FeatureSYN, sdk.FeatureDNSQueries)
	for _, row := range b.Rows {
		fmt.Printf("packets %v, SYN share %.2f, DNS %v\n", v.Get(row, 0), v.Get(row, 1)/v.Get(row, 0), v.Get(row, 2))
	}
	// Output:
	// packets 100, SYN share 0.90, DNS NaN
	// packets 50, SYN share 0.02, DNS NaN
}
