//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netguardian/netguardian/sdk"
)

// vethLink is a veth pair whose peer end lives in a network namespace of
// its own; the host end stays in this namespace.
type vethLink struct {
	hostIf, peerIf string
	netns          string
	hostAddr       string // 10.203.X.1
	peerAddr       string // 10.203.X.2
}

// vethPair makes a network namespace holding one end of a veth pair
// (10.203.X.2/30); the other end (10.203.X.1/30) stays in this namespace.
// Both are removed at cleanup.
func vethPair(t *testing.T) (hostIf, peerAddr string) {
	l := newVethLink(t)
	return l.hostIf, l.peerAddr
}

func newVethLink(tb testing.TB) vethLink {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("skipping live capture: needs root (network namespaces, AF_PACKET)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		tb.Skip("skipping live capture: the ip command (iproute2) is missing")
	}
	n := rand.IntN(250) + 1
	l := vethLink{
		hostIf: fmt.Sprintf("ngh%d", n), peerIf: fmt.Sprintf("ngp%d", n),
		netns:    fmt.Sprintf("ngtest-%d-%d", os.Getpid(), n),
		hostAddr: fmt.Sprintf("10.203.%d.1", n), peerAddr: fmt.Sprintf("10.203.%d.2", n),
	}
	ip := func(args ...string) {
		tb.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			tb.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	ip("netns", "add", l.netns)
	tb.Cleanup(func() {
		exec.Command("ip", "link", "del", l.hostIf).Run()
		exec.Command("ip", "netns", "del", l.netns).Run()
	})
	ip("link", "add", l.hostIf, "type", "veth", "peer", "name", l.peerIf, "netns", l.netns)
	ip("addr", "add", l.hostAddr+"/30", "dev", l.hostIf)
	ip("link", "set", l.hostIf, "up")
	ip("-n", l.netns, "addr", "add", l.peerAddr+"/30", "dev", l.peerIf)
	ip("-n", l.netns, "link", "set", l.peerIf, "up")
	ip("-n", l.netns, "link", "set", "lo", "up")
	return l
}

// 500 UDP datagrams to port 40000 are sent from this namespace to the peer
// while the plugin captures on our end of the pair with the filter
// "udp and port 40000"; 200 datagrams to port 40001 are sent in between.
// Exactly the 500 must arrive, each once, and nothing else.
func TestLiveCapture(t *testing.T) {
	requireTcpdump(t)
	hostIf, peer := vethPair(t)
	p := &pcapCapture{}
	js, _ := json.Marshal(map[string]any{"interface": hostIf, "bpf": "udp and port 40000"})
	rt := sdk.Runtime{IncludeFrames: true, BatchSize: 64, FlushInterval: 20 * time.Millisecond}
	if err := p.Configure(context.Background(), sdk.Config{JSON: js, Runtime: rt}); err != nil {
		t.Fatal(err)
	}
	var (
		mu       sync.Mutex
		probes   int
		seen     = map[string]int{}
		others   []string
		counters sdk.CaptureCounters
	)
	w := sdk.NewPacketWriter(rt, 0, func(b *sdk.PacketBatch) error {
		mu.Lock()
		defer mu.Unlock()
		counters = b.Counters
		for i := 0; i < b.Len(); i++ {
			var pk sdk.Packet
			b.Packet(i, &pk)
			payload := string(pk.Frame[min(len(pk.Frame), 14+20+8):])
			switch {
			case pk.Protocol != sdk.ProtoUDP || pk.DstPort != 40000 || b.Dst(i).String() != peer || pk.Length != uint32(14+20+8+len(payload)):
				others = append(others, fmt.Sprintf("%+v", pk))
			case payload == "probe":
				probes++
			default:
				seen[payload]++
			}
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.Start(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Capture(ctx, 0, w) }()

	conn, err := net.ListenPacket("udp4", ":0") // unconnected: ICMP errors do not stop sends
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	to := &net.UDPAddr{IP: net.ParseIP(peer), Port: 40000}
	other := &net.UDPAddr{IP: net.ParseIP(peer), Port: 40001}
	// Wait until the capture runs: probes until one comes through.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		ready := probes > 0
		mu.Unlock()
		if ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("capture never saw a probe datagram")
		}
		conn.WriteTo([]byte("probe"), to)
		time.Sleep(20 * time.Millisecond)
	}
	for i := 0; i < 500; i++ {
		if _, err := conn.WriteTo([]byte(fmt.Sprintf("data-%03d", i)), to); err != nil {
			t.Fatal(err)
		}
		if i%5 == 0 && i/5 < 200 {
			for j := 0; j < 2; j++ {
				conn.WriteTo([]byte("excluded"), other)
			}
		}
		if i%50 == 49 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	// Wait for all 500 (or give up after 10 s).
	deadline = time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n >= 500 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // would-be duplicates or strays
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("Capture returned %v, want context.Canceled", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 500 {
		t.Errorf("%d distinct datagrams captured, want 500", len(seen))
	}
	for i := 0; i < 500; i++ {
		if k := fmt.Sprintf("data-%03d", i); seen[k] != 1 {
			t.Errorf("%s captured %d times", k, seen[k])
		}
	}
	if len(others) > 0 {
		t.Errorf("%d packets the filter should have excluded, e.g. %s", len(others), others[0])
	}
	// The last batch went out before the final counters; Stats has them.
	st := p.Stats().Counters
	if st["kernel_drops"] != 0 || st["decode_errors"] != 0 || counters.Packets > st["packets"] {
		t.Errorf("stats %v, last batch's counters %+v", st, counters)
	}
	if want := uint64(500 + probes); st["packets"] != want {
		t.Errorf("packets counter %d, want %d (500 + %d probes)", st["packets"], want, probes)
	}
}

// Without a filter, the capture sees ARP and ICMP port-unreachables as well.
func TestLiveNoFilter(t *testing.T) {
	hostIf, peer := vethPair(t)
	p := &pcapCapture{}
	js, _ := json.Marshal(map[string]any{"interface": hostIf, "promisc": false})
	if err := p.Configure(context.Background(), sdk.Config{JSON: js}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	protos := map[uint8]int{}
	nonIP := 0
	w := sdk.NewPacketWriter(sdk.Runtime{FlushInterval: 20 * time.Millisecond}, 0, func(b *sdk.PacketBatch) error {
		mu.Lock()
		defer mu.Unlock()
		for i := 0; i < b.Len(); i++ {
			if sdk.PacketFlags(b.Flags[i])&sdk.PacketNonIP != 0 {
				nonIP++
			} else {
				protos[b.Protocols[i]]++
			}
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.Start(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Capture(ctx, 0, w) }()
	time.Sleep(200 * time.Millisecond)
	// Ping the peer: ARP, then ICMP echo request and reply.
	out, err := exec.Command("ping", "-c", "3", "-i", "0.2", "-W", "1", peer).CombinedOutput()
	if err != nil {
		t.Skipf("ping unavailable: %v %s", err, out)
	}
	time.Sleep(200 * time.Millisecond)
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	// 3 requests + 3 replies (ping -c 3 succeeded); at least one ARP exchange.
	if protos[sdk.ProtoICMP] != 6 || nonIP < 2 {
		t.Errorf("ICMP %d (want 6), non-IP %d (want ≥ 2 ARP)", protos[sdk.ProtoICMP], nonIP)
	}
}

// liveRun is a live capture running in the background for a test.
type liveRun struct {
	p      *pcapCapture
	cancel context.CancelFunc
	done   chan error
}

func startLive(t *testing.T, cfg map[string]any, rt sdk.Runtime, send func(*sdk.PacketBatch) error) *liveRun {
	t.Helper()
	p := &pcapCapture{}
	js, _ := json.Marshal(cfg)
	if err := p.Configure(context.Background(), sdk.Config{JSON: js, Runtime: rt}); err != nil {
		t.Fatal(err)
	}
	w := sdk.NewPacketWriter(rt, 0, send)
	ctx, cancel := context.WithCancel(context.Background())
	r := &liveRun{p: p, cancel: cancel, done: make(chan error, 1)}
	w.Start(ctx)
	go func() { r.done <- p.Capture(ctx, 0, w) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels the capture and checks that it ended for that reason.
func (r *liveRun) stop(t *testing.T) {
	if r.done == nil {
		return
	}
	r.cancel()
	if err := <-r.done; err != context.Canceled {
		t.Errorf("Capture returned %v, want context.Canceled", err)
	}
	r.done = nil
}

// waitFor polls cond every 10 ms for up to 10 s.
func waitFor(cond func() bool) bool {
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// A ring of four 4 KiB blocks (about 25 frames each) goes round many times
// while 1000 datagrams of 200 bytes pass, sent 20 at a time once the
// previous ones were captured: each arrives once, in order, cut to the
// snaplen of 64 by the program attached in place of a filter, with its
// wire length.
func TestLiveSmallRing(t *testing.T) {
	hostIf, peer := vethPair(t)
	const port, n, burst, size = 40002, 1000, 20, 200
	var (
		mu     sync.Mutex
		seqs   []int
		probes int
		bad    []string
	)
	rt := sdk.Runtime{IncludeFrames: true, BatchSize: 8, FlushInterval: 5 * time.Millisecond}
	run := startLive(t, map[string]any{"interface": hostIf, "snaplen": 64, "ring_size": "16KiB", "block_size": "4KiB"}, rt, func(b *sdk.PacketBatch) error {
		mu.Lock()
		defer mu.Unlock()
		for i := 0; i < b.Len(); i++ {
			if b.Protocols[i] != sdk.ProtoUDP || b.DstPorts[i] != port {
				continue
			}
			f := b.Frames[i]
			if len(f) != 64 || b.Lengths[i] != 14+20+8+size {
				bad = append(bad, fmt.Sprintf("frame of %d bytes, length %d", len(f), b.Lengths[i]))
				continue
			}
			var seq int
			fmt.Sscanf(string(f[14+20+8:]), "%d", &seq)
			if seq < 0 {
				probes++
			} else {
				seqs = append(seqs, seq)
			}
		}
		return nil
	})
	conn, err := net.ListenPacket("udp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	to := &net.UDPAddr{IP: net.ParseIP(peer), Port: port}
	payload := func(seq int) []byte { return fmt.Appendf(nil, "%-*d", size, seq) }
	captured := func() int { mu.Lock(); defer mu.Unlock(); return len(seqs) }
	// Probes (sequence -1) until the capture runs.
	if !waitFor(func() bool { conn.WriteTo(payload(-1), to); mu.Lock(); defer mu.Unlock(); return probes > 0 }) {
		t.Fatal("capture never saw a probe datagram")
	}
	for i := 0; i < n; i += burst {
		for j := i; j < i+burst; j++ {
			if _, err := conn.WriteTo(payload(j), to); err != nil {
				t.Fatal(err)
			}
		}
		if !waitFor(func() bool { return captured() >= i+burst }) {
			break
		}
	}
	time.Sleep(50 * time.Millisecond) // would-be duplicates
	run.stop(t)
	mu.Lock()
	defer mu.Unlock()
	got := seqs
	want := make([]int, n)
	for i := range want {
		want[i] = i
	}
	if !slices.Equal(got, want) {
		t.Errorf("captured %d datagrams, want 0..%d in order; got %v...", len(got), n-1, got[:min(len(got), 30)])
	}
	if len(bad) > 0 {
		t.Errorf("%d frames not cut to 64 bytes or with the wrong length, e.g. %s", len(bad), bad[0])
	}
	st := run.p.Stats().Counters
	t.Logf("stats %v", st)
	if st["kernel_drops"] != 0 {
		t.Errorf("kernel drops %d, want 0", st["kernel_drops"])
	}
}

// While the core holds the capture up (the batch handler blocks), a ring
// of four 4 KiB blocks fills up: of 2000 datagrams sent meanwhile, those
// the kernel could not store are counted as kernel drops (in the batches'
// counters and in Stats) along with the ring's freezes, and once the
// handler lets go, the rest arrive intact: captured + dropped = sent.
func TestLiveRingDrops(t *testing.T) {
	requireTcpdump(t)
	hostIf, peer := vethPair(t)
	const port, n = 40003, 2000
	var (
		mu       sync.Mutex
		seen     = map[string]int{}
		counters sdk.CaptureCounters
		blocking atomic.Bool
	)
	release := make(chan struct{})
	rt := sdk.Runtime{BatchSize: 16, FlushInterval: 5 * time.Millisecond, IncludeFrames: true}
	run := startLive(t, map[string]any{"interface": hostIf, "bpf": fmt.Sprintf("udp and dst port %d", port), "snaplen": 128, "ring_size": "16KiB", "block_size": "4KiB"}, rt, func(b *sdk.PacketBatch) error {
		if blocking.Load() {
			<-release
		}
		mu.Lock()
		defer mu.Unlock()
		counters = b.Counters
		for i := 0; i < b.Len(); i++ {
			seen[string(b.Frames[i][14+20+8:])]++
		}
		return nil
	})
	conn, err := net.ListenPacket("udp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	to := &net.UDPAddr{IP: net.ParseIP(peer), Port: port}
	if !waitFor(func() bool {
		conn.WriteTo([]byte("probe"), to)
		mu.Lock()
		defer mu.Unlock()
		return seen["probe"] > 0
	}) {
		t.Fatal("capture never saw a probe datagram")
	}
	time.Sleep(50 * time.Millisecond) // the last probes
	blocking.Store(true)
	for i := 0; i < n; i++ {
		if _, err := conn.WriteTo(fmt.Appendf(nil, "data-%04d", i), to); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	blocking.Store(false)
	close(release)
	dropsOf := func() uint64 { return run.p.Stats().Counters["kernel_drops"] }
	captured := func() int { mu.Lock(); defer mu.Unlock(); return len(seen) - 1 }
	waitFor(func() bool { return uint64(captured())+dropsOf() >= n })
	time.Sleep(250 * time.Millisecond) // counters are published every 100 ms
	run.stop(t)
	mu.Lock()
	defer mu.Unlock()
	st := run.p.Stats().Counters
	t.Logf("captured %d of %d, stats %v, last batch's counters %+v", len(seen)-1, n, st, counters)
	for k, c := range seen {
		if c != 1 && k != "probe" {
			t.Errorf("%q captured %d times", k, c)
		}
	}
	if got := uint64(len(seen)-1) + st["kernel_drops"]; got != n {
		t.Errorf("captured %d + kernel drops %d = %d, want the %d sent", len(seen)-1, st["kernel_drops"], got, n)
	}
	if st["kernel_drops"] == 0 || st["ring_freezes"] == 0 || counters.KernelDrops == 0 {
		t.Errorf("want kernel drops and ring freezes counted: stats %v, last batch's counters %+v", st, counters)
	}
}

// An interface taken down under the capture ends it with an error that
// says so (the kernel reports ENETDOWN on the socket, which poll sees).
func TestLiveInterfaceDown(t *testing.T) {
	hostIf, peer := vethPair(t)
	var seen atomic.Int64
	p := &pcapCapture{}
	js, _ := json.Marshal(map[string]any{"interface": hostIf})
	if err := p.Configure(context.Background(), sdk.Config{JSON: js}); err != nil {
		t.Fatal(err)
	}
	w := sdk.NewPacketWriter(sdk.Runtime{FlushInterval: 5 * time.Millisecond}, 0, func(b *sdk.PacketBatch) error {
		seen.Add(int64(b.Len()))
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.Start(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Capture(ctx, 0, w) }()
	conn, err := net.ListenPacket("udp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if !waitFor(func() bool {
		conn.WriteTo([]byte("probe"), &net.UDPAddr{IP: net.ParseIP(peer), Port: 40004})
		return seen.Load() > 0
	}) {
		t.Fatal("capture never saw a probe datagram")
	}
	if out, err := exec.Command("ip", "link", "set", hostIf, "down").CombinedOutput(); err != nil {
		t.Fatalf("ip link set down: %v: %s", err, out)
	}
	select {
	case err := <-done:
		want := fmt.Sprintf("capture-pcap: interface %q went down: network is down", hostIf)
		if err == nil || err.Error() != want {
			t.Errorf("Capture returned %v, want %q", err, want)
		}
		if st := p.Stats(); st.Healthy || st.Message != want {
			t.Errorf("Stats %+v, want unhealthy with %q", st, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Capture went on after the interface went down")
	}
}
