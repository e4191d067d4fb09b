package host

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/netguardian/netguardian/core/spool"
	"github.com/netguardian/netguardian/sdk"
)

func openSpool(t *testing.T, dir string) *spool.Spool {
	t.Helper()
	sp, rec, err := spool.Open(spool.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Clean() {
		t.Fatalf("recovery: %s", rec)
	}
	return sp
}

func runSpooled(t *testing.T, p *Plugin, sp *spool.Spool, n int) *SinkWriter {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := p.NewSpooledSinkWriter(sp, 2, false)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	for i := 0; i < n; i++ {
		if err := w.Write(ctx, sdk.Records{Features: featureBatch(float64(i))}); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return w
}

// Through the spool, a sink crash still costs nothing: every batch is read
// back from disk and re-sent until acknowledged, and the spool ends empty.
func TestSpooledSinkCrashResendsFromDisk(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	p := startTest(t, sdk.KindSink, map[string]any{"crash_on_call": 4, "marker": filepath.Join(dir, "crashed"), "out": out})
	sp := openSpool(t, filepath.Join(dir, "spool"))
	defer sp.Close()
	w := runSpooled(t, p, sp, 20)
	seen := readSeqs(t, out)
	for s := uint64(1); s <= 20; s++ {
		if seen[s] == 0 {
			t.Errorf("batch %d never stored", s)
		}
	}
	if n, _ := sp.Pending(); n != 0 || p.Restarts() != 1 || w.Acked() < 20 {
		t.Fatalf("pending=%d restarts=%d acked=%d", n, p.Restarts(), w.Acked())
	}
}

// Batches spooled while the sink rejects them (its database is down) are
// delivered once it recovers.
func TestSpooledSinkRetriesRejected(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.jsonl")
	p := startTest(t, sdk.KindSink, map[string]any{"fail_first": 3, "out": out})
	sp := openSpool(t, filepath.Join(dir, "spool"))
	defer sp.Close()
	w := runSpooled(t, p, sp, 6)
	if seen := readSeqs(t, out); len(seen) != 6 {
		t.Fatalf("stored %v, want 6 distinct batches", seen)
	}
	if w.Rejected() < 1 {
		t.Fatal("no rejection counted")
	}
}

// What a stopped core left in the spool is delivered by the next one.
func TestSpoolSurvivesTheCore(t *testing.T) {
	dir := t.TempDir()
	spoolDir := filepath.Join(dir, "spool")
	// A "core" that spools 5 batches and stops before any is delivered.
	sp := openSpool(t, spoolDir)
	for i := 0; i < 5; i++ {
		b, err := sdk.MarshalRecords(sdk.Records{Features: featureBatch(float64(i))})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sp.Append(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	// The next core opens the spool and has nothing new to write.
	out := filepath.Join(dir, "out.jsonl")
	p := startTest(t, sdk.KindSink, map[string]any{"out": out})
	sp = openSpool(t, spoolDir)
	defer sp.Close()
	runSpooled(t, p, sp, 0)
	if seen := readSeqs(t, out); len(seen) != 5 {
		t.Fatalf("delivered %v, want the 5 spooled batches", seen)
	}
	if n, _ := sp.Pending(); n != 0 {
		t.Fatalf("%d batches still pending", n)
	}
}
