//go:build unix

package spool

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const helperEnv = "NETGUARDIAN_SPOOL_HELPER"

// TestHelperProcess is the child of TestKill9: it appends records as
// fast as it can, acknowledging some, and prints a line after each
// Append or Ack has returned, until it is killed. It does nothing in a
// normal test run.
func TestHelperProcess(t *testing.T) {
	arg := os.Getenv(helperEnv)
	if arg == "" {
		t.Skip("helper process for TestKill9")
	}
	dir, policy, _ := strings.Cut(arg, "|")
	if policy == "fsize" {
		fileSizeLimitChild(dir)
		return
	}
	sync := SyncEveryBatch
	if policy == "grouped" {
		sync = SyncGrouped(8, time.Millisecond)
	}
	s, _, err := Open(Options{Dir: dir, SegmentBytes: 8 << 10, Sync: sync})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	out := os.Stdout // unbuffered: a printed line is a returned call
	var prev uint64
	for i := 0; ; i++ {
		seq, err := s.Append(payloadFor(i))
		if err != nil {
			fmt.Fprintln(out, "error", err)
			os.Exit(2)
		}
		fmt.Fprintf(out, "A %d %d\n", seq, i)
		// Acknowledge most records one behind, as a sink would.
		if prev != 0 && i%4 != 0 {
			fmt.Fprintf(out, "k %d\n", prev) // about to ack: may be done when killed
			if err := s.Ack(prev); err != nil {
				fmt.Fprintln(out, "error", err)
				os.Exit(2)
			}
			fmt.Fprintf(out, "K %d\n", prev)
		}
		prev = seq
	}
}

// TestKill9 runs the helper in a child process, SIGKILLs it mid-run, and
// checks that a fresh Open finds every record the child reported as
// appended and never began to acknowledge, in order, and none whose Ack it
// reported as returned (SyncEveryBatch makes the ack durable before Ack returns;
// with grouped syncing the page cache survives the kill all the same).
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	for _, policy := range []string{"every", "grouped"} {
		t.Run(policy, func(t *testing.T) {
			for round := range 3 {
				kill9Round(t, policy, 200+round*377)
			}
		})
	}
}

func kill9Round(t *testing.T, policy string, after int) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir+"|"+policy)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	appended := map[uint64]int{}  // seq → record index
	acked := map[uint64]bool{}    // Ack returned
	ackBegun := map[uint64]bool{} // Ack called
	var maxSeq uint64
	sc := bufio.NewScanner(stdout)
	parse := func(line string) {
		f := strings.Fields(line)
		switch {
		case len(f) == 3 && f[0] == "A":
			seq, _ := strconv.ParseUint(f[1], 10, 64)
			i, _ := strconv.Atoi(f[2])
			appended[seq] = i
			maxSeq = max(maxSeq, seq)
		case len(f) == 2 && f[0] == "k":
			seq, _ := strconv.ParseUint(f[1], 10, 64)
			ackBegun[seq] = true
		case len(f) == 2 && f[0] == "K":
			seq, _ := strconv.ParseUint(f[1], 10, 64)
			acked[seq] = true
		case strings.HasPrefix(line, "error"):
			t.Errorf("child: %s", line)
		}
	}
	for len(appended) < after && sc.Scan() {
		parse(sc.Text())
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() { // lines written before the kill
		parse(sc.Text())
	}
	_ = cmd.Wait()
	if t.Failed() || len(appended) < after {
		t.Fatalf("child reported %d appends", len(appended))
	}

	s, rec := openT(t, Options{Dir: dir, SegmentBytes: 8 << 10})
	// A kill can cut only the write in progress: a record the child never
	// reported.
	for _, l := range rec.Losses {
		if !l.Torn || l.FirstSeq <= maxSeq {
			t.Fatalf("after kill -9: loss %+v (child reported up to %d)", l, maxSeq)
		}
	}
	got := readAll(t, s.Reader(0))
	seen := map[uint64]bool{}
	var last uint64
	for _, r := range got {
		if r.Seq <= last {
			t.Fatalf("record %d after %d", r.Seq, last)
		}
		last = r.Seq
		seen[r.Seq] = true
		if acked[r.Seq] {
			t.Fatalf("record %d replayed though its ack had returned", r.Seq)
		}
		if r.Seq <= maxSeq {
			if _, ok := appended[r.Seq]; !ok {
				t.Fatalf("record %d was never appended", r.Seq)
			}
		}
	}
	checkPayloads(t, filterKnown(got, appended), appended)
	missing := 0
	for seq := range appended {
		if !ackBegun[seq] && !seen[seq] {
			missing++
			t.Errorf("record %d: appended, never acknowledged, not replayed", seq)
		}
	}
	if missing > 0 {
		t.FailNow()
	}
	t.Logf("%s: killed after %d appends, %d acks; replayed %d (recovery: %s)", policy, len(appended), len(acked), len(got), rec)
	if rec.NextSeq <= maxSeq {
		t.Fatalf("next sequence %d reuses reported ones (max %d)", rec.NextSeq, maxSeq)
	}
}

func filterKnown(recs []Record, known map[uint64]int) []Record {
	var out []Record
	for _, r := range recs {
		if _, ok := known[r.Seq]; ok {
			out = append(out, r)
		}
	}
	return out
}

// fileSizeLimitChild appends under RLIMIT_FSIZE, so that writes crossing
// the limit are cut short and fail (EFBIG): what a full disk does.
func fileSizeLimitChild(dir string) {
	s, _, err := Open(Options{Dir: dir, SegmentBytes: 64 << 10})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	lim := syscall.Rlimit{Cur: 20000, Max: 1<<64 - 1}
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err == nil {
		lim.Max = old.Max
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	for i := range 100 {
		p := make([]byte, 1500)
		copy(p, payloadFor(i))
		seq, err := s.Append(p)
		if err != nil {
			fmt.Printf("E %d %v\n", i, err)
			continue
		}
		fmt.Printf("A %d %d\n", seq, i)
	}
	if err := s.Close(); err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
}

// TestWriteFailureLeavesNoGarbage makes appends fail half-written (a
// file size limit, like a full disk) and checks the spool cut them off:
// the next Open is clean and holds exactly the appends that succeeded.
func TestWriteFailureLeavesNoGarbage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir+"|fsize")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var ok []uint64
	failed := 0
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 3 && f[0] == "A":
			seq, _ := strconv.ParseUint(f[1], 10, 64)
			ok = append(ok, seq)
		case len(f) > 0 && f[0] == "E":
			failed++
			if !strings.Contains(line, "file too large") {
				t.Errorf("append failed otherwise than on the size limit: %s", line)
			}
		case len(f) > 0 && f[0] == "error":
			t.Fatalf("child: %s", line)
		}
	}
	if failed == 0 || len(ok) < 20 {
		t.Fatalf("%d appends failed, %d succeeded: the limit was not exercised", failed, len(ok))
	}
	s, rec := openT(t, Options{Dir: dir, SegmentBytes: 64 << 10})
	if !rec.Clean() {
		t.Fatalf("garbage left by failed writes: %s", rec)
	}
	got := seqsOf(readAll(t, s.Reader(0)))
	if !slices.Equal(got, ok) {
		t.Fatalf("replayed %v, want the successful appends %v", got, ok)
	}
	for _, name := range files(t, dir, segSuffix) {
		if sz := fileSize(t, filepath.Join(dir, name)); sz > 20000 {
			t.Fatalf("%s is %d bytes, over the limit", name, sz)
		}
	}
}
