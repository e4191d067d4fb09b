package spool

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"
)

// AppendLimit below MaxBytes refuses at the high-water mark while Append
// still has room; above it, it takes a record the full spool refuses,
// which Append then counts against the bound; a record of its own
// segment is kept across a reopen like any other.
func TestAppendLimitBelowAndAboveTheBound(t *testing.T) {
	dir := t.TempDir()
	const maxBytes, segBytes = 64 << 10, 16 << 10
	s, _ := openT(t, Options{Dir: dir, MaxBytes: maxBytes, SegmentBytes: segBytes})
	payload := make([]byte, 1000)
	high := int64(maxBytes * 3 / 4)
	var below int
	for {
		if _, err := s.AppendLimit(payload, high); errors.Is(err, ErrFull) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		below++
	}
	_, disk := s.Pending()
	if disk > high || disk+2*(frameHeader+1000)+segHeaderSize < high {
		t.Fatalf("high-water mark %d: appends stopped at %d bytes", high, disk)
	}
	var more int
	for {
		if _, err := s.Append(payload); errors.Is(err, ErrFull) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		more++
	}
	if more == 0 {
		t.Fatal("Append found no room above the high-water mark")
	}
	// Full: AppendWaitLimit with a lower limit waits, and so does AppendWait.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.AppendWaitLimit(ctx, payload, high); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("AppendWaitLimit on a full spool: %v, want the context's deadline", err)
	}
	var past int
	for range 20 {
		if _, err := s.AppendLimit(payload, math.MaxInt64); err != nil {
			t.Fatalf("append past the bound: %v", err)
		}
		past++
	}
	n, disk := s.Pending()
	if disk <= maxBytes {
		t.Fatalf("%d bytes after appending past the bound; want more than %d", disk, maxBytes)
	}
	if _, err := s.Append(payload); !errors.Is(err, ErrFull) {
		t.Fatalf("Append past the bound: %v, want ErrFull", err)
	}
	if _, err := s.AppendLimit(make([]byte, high), high); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a record larger than the limit: %v, want ErrTooLarge", err)
	}
	t.Logf("%d records below the high-water mark %d, %d more up to the bound %d, %d past it: %d records, %d bytes",
		below, high, more, maxBytes, past, n, disk)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, rec := openT(t, Options{Dir: dir, MaxBytes: maxBytes, SegmentBytes: segBytes})
	if got, _ := s2.Pending(); got != n || !rec.Clean() {
		t.Fatalf("reopened: %d records (recovery %s), want %d", got, rec, n)
	}
}
