package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/netguardian/netguardian/internal/pgtest"
	"github.com/netguardian/netguardian/internal/syncbuf"
	"github.com/netguardian/netguardian/sdk"
)

// The tests run the real plugin binary, as the core does: TestMain builds
// it, tests launch it with sdk.Launch and talk to it over gRPC.
var (
	buildDir   string
	pluginPath string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ng-sink-postgres-test")
	if err != nil {
		panic(err)
	}
	buildDir, pluginPath = dir, filepath.Join(dir, "sink-postgres")
	if out, err := exec.Command("go", "build", "-o", pluginPath, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build sink-postgres: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	pgtest.Shutdown()
	os.RemoveAll(dir)
	os.Exit(code)
}

// launched is a running plugin process.
type launched struct {
	conn *sdk.Conn
	logs *syncbuf.Buffer
}

// launch starts the plugin binary; it is killed when t ends.
func launch(t testing.TB) *launched {
	t.Helper()
	logs := &syncbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(logs), &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := sdk.Launch(ctx, sdk.LaunchOptions{Path: pluginPath, Name: "pg", Env: []string{"PATH=" + os.Getenv("PATH")}, Logger: log})
	if err != nil {
		t.Fatalf("launch: %v", err)
	}
	t.Cleanup(conn.Kill)
	return &launched{conn: conn, logs: logs}
}

// configJSON is a config block as the core sends it.
func configJSON(t testing.TB, attrs map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(attrs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// startSink launches the plugin and configures it against url with extra
// attributes.
func startSink(t testing.TB, url string, attrs map[string]any) *launched {
	t.Helper()
	p := launch(t)
	all := map[string]any{"url": url}
	for k, v := range attrs {
		all[k] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := p.conn.Configure(ctx, sdk.Config{JSON: configJSON(t, all), Runtime: sdk.Runtime{Sensor: "test-sensor"}}); err != nil {
		t.Fatalf("configure: %v", err)
	}
	return p
}

// writer sends record batches over the plugin's write stream as the core
// does (increasing Seq, several in flight) and collects the acks.
type writer struct {
	stream *sdk.RecordStream
	cancel context.CancelFunc

	mu      sync.Mutex
	cond    *sync.Cond
	seq     uint64
	pending map[uint64]bool
	acks    map[uint64]string // seq -> error ("" = stored)
	recvErr error
}

func newWriter(t testing.TB, p *launched) *writer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := p.conn.OpenRecords(ctx)
	if err != nil {
		cancel()
		t.Fatalf("open records: %v", err)
	}
	w := &writer{stream: s, cancel: cancel, pending: map[uint64]bool{}, acks: map[uint64]string{}}
	w.cond = sync.NewCond(&w.mu)
	go w.recv()
	t.Cleanup(func() { _ = s.CloseSend(); cancel() })
	return w
}

func (w *writer) recv() {
	for {
		a, err := w.stream.Recv()
		w.mu.Lock()
		if err != nil {
			w.recvErr = err
			w.cond.Broadcast()
			w.mu.Unlock()
			return
		}
		delete(w.pending, a.Seq)
		w.acks[a.Seq] = a.Err
		w.cond.Broadcast()
		w.mu.Unlock()
	}
}

// send sends rec with the next Seq (or rec.Seq when set: a re-send) and
// returns the Seq.
func (w *writer) send(rec sdk.Records) (uint64, error) {
	w.mu.Lock()
	if rec.Seq == 0 {
		w.seq++
		rec.Seq = w.seq
	}
	for len(w.pending) >= 8 && w.recvErr == nil { // the core's window
		w.cond.Wait()
	}
	w.pending[rec.Seq] = true
	delete(w.acks, rec.Seq)
	w.mu.Unlock()
	return rec.Seq, w.stream.Send(rec)
}

// wait waits for the ack of seq and returns the sink's error, if any.
func (w *writer) wait(seq uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		if e, ok := w.acks[seq]; ok {
			if e != "" {
				return errors.New(e)
			}
			return nil
		}
		if w.recvErr != nil {
			return fmt.Errorf("stream ended before the ack of %d: %w", seq, w.recvErr)
		}
		w.cond.Wait()
	}
}

// flush waits for every ack and returns the first error.
func (w *writer) flush() error {
	w.mu.Lock()
	for len(w.pending) > 0 && w.recvErr == nil {
		w.cond.Wait()
	}
	var errs []error
	for seq, e := range w.acks {
		if e != "" {
			errs = append(errs, fmt.Errorf("batch %d: %s", seq, e))
		}
	}
	clear(w.acks)
	err := w.recvErr
	w.mu.Unlock()
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// write sends rec and waits for its ack.
func (w *writer) write(rec sdk.Records) error {
	seq, err := w.send(rec)
	if err != nil {
		return err
	}
	return w.wait(seq)
}

// appender is storetest's Appender over the plugin's write stream.
type appender struct{ w *writer }

func (a appender) AppendFeatures(_ context.Context, b *sdk.FeatureBatch) error {
	// The wire carries one value per name; the contract's rows may be
	// shorter (later features missing), which is NaN.
	c := *b
	c.Rows = slices.Clone(b.Rows)
	for i := range c.Rows {
		if n := len(c.Rows[i].Values); n < len(c.Names) {
			v := slices.Clone(c.Rows[i].Values)
			for range len(c.Names) - n {
				v = append(v, math.NaN())
			}
			c.Rows[i].Values = v
		}
	}
	_, err := a.w.send(sdk.Records{Features: &c})
	return err
}

func (a appender) AppendAlerts(_ context.Context, alerts []sdk.Alert) error {
	_, err := a.w.send(sdk.Records{Alerts: alerts})
	return err
}

func (a appender) Flush(context.Context) error { return a.w.flush() }

// db opens a direct connection to check what the plugin stored.
func db(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func count(t testing.TB, c *pgx.Conn, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := c.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}
