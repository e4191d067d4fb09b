package spool

import (
	"context"
	"testing"
	"time"
)

// recordsPerOp records make one benchmark operation, so that even
// `make bench` (-benchtime 1x) measures a meaningful run.
const recordsPerOp = 64

func benchPayload(size int) []byte {
	p := make([]byte, size)
	for i := range p {
		p[i] = byte(i * 7)
	}
	return p
}

func reportRate(b *testing.B, records int, bytes int64) {
	secs := b.Elapsed().Seconds()
	if secs > 0 {
		b.ReportMetric(float64(records)/secs, "records/s")
		b.ReportMetric(float64(bytes)/secs/1e6, "MB/s")
	}
}

// BenchmarkAppend measures Append (with its fsyncs) of 60 KB records,
// the size of a packet batch with frames, and of 1 KB ones (alerts,
// small feature batches). Acknowledgements, outside the timer, keep the
// spool from filling up.
func BenchmarkAppend(b *testing.B) {
	for _, bc := range []struct {
		name string
		size int
		sync SyncPolicy
	}{
		{"60KB/every", 60 << 10, SyncEveryBatch},
		{"60KB/grouped16", 60 << 10, SyncGrouped(16, 100*time.Millisecond)},
		{"60KB/none", 60 << 10, SyncNone},
		{"1KB/every", 1 << 10, SyncEveryBatch},
		{"1KB/grouped64", 1 << 10, SyncGrouped(64, 100*time.Millisecond)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, _ := openT(b, Options{Dir: b.TempDir(), Sync: bc.sync, SegmentBytes: 64 << 20, MaxBytes: 4 << 30})
			p := benchPayload(bc.size)
			b.SetBytes(int64(recordsPerOp * bc.size))
			n := 0
			for b.Loop() {
				first := uint64(0)
				for range recordsPerOp {
					seq, err := s.Append(p)
					if err != nil {
						b.Fatal(err)
					}
					if first == 0 {
						first = seq
					}
				}
				n += recordsPerOp
				b.StopTimer()
				for q := first; q < first+recordsPerOp; q++ {
					if err := s.Ack(q); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
			}
			reportRate(b, n, int64(n*bc.size))
		})
	}
}

// BenchmarkReplay measures reading 64 MB of 60 KB records back (page
// cache warm, as right after a restart of the core alone).
func BenchmarkReplay(b *testing.B) {
	const size = 60 << 10
	const total = 1100 // ~64 MB
	s, _ := openT(b, Options{Dir: b.TempDir(), Sync: SyncNone, SegmentBytes: 16 << 20})
	p := benchPayload(size)
	for range total {
		if _, err := s.Append(p); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Sync(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(total * size)
	n := 0
	for b.Loop() {
		r := s.Reader(0)
		got := 0
		for {
			rec, err := r.Next()
			if err != nil {
				break
			}
			if len(rec.Payload) != size {
				b.Fatalf("record %d has %d bytes", rec.Seq, len(rec.Payload))
			}
			got++
		}
		_ = r.Close()
		if got != total {
			b.Fatalf("replayed %d of %d", got, total)
		}
		n += got
	}
	reportRate(b, n, int64(n)*size)
}

// BenchmarkRoundTrip is the sink path end to end with the default
// policy: one goroutine appends 60 KB records, another reads them and
// acknowledges each (two fsyncs per record: the record, the ack).
//
// lazyacks fsyncs acknowledgements in groups (AckSync): one fsync per
// record; grouped16 fsyncs records and acks in groups of 16.
func BenchmarkRoundTrip(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts Options
	}{
		{"every", Options{}},
		{"lazyacks", Options{AckSync: SyncGrouped(64, 100*time.Millisecond)}},
		{"grouped16", Options{Sync: SyncGrouped(16, 10*time.Millisecond)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			opts := bc.opts
			opts.Dir, opts.SegmentBytes = b.TempDir(), 16<<20
			roundTrip(b, opts)
		})
	}
}

func roundTrip(b *testing.B, opts Options) {
	const size = 60 << 10
	s, _ := openT(b, opts)
	p := benchPayload(size)
	r := s.Reader(0)
	defer r.Close()
	b.SetBytes(recordsPerOp * size)
	ctx := context.Background()
	n := 0
	for b.Loop() {
		done := make(chan error, 1)
		go func() {
			for range recordsPerOp {
				if _, err := s.Append(p); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		for range recordsPerOp {
			rec, err := r.NextWait(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.Ack(rec.Seq); err != nil {
				b.Fatal(err)
			}
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		n += recordsPerOp
	}
	reportRate(b, n, int64(n)*size)
}
