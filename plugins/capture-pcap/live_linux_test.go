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
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netguardian/netguardian/sdk"
)

// vethPair makes a network namespace holding one end of a veth pair
// (10.203.X.2/30); the other end (10.203.X.1/30) stays in this namespace.
// Both are removed at cleanup.
func vethPair(t *testing.T) (hostIf, peerAddr string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping live capture: needs root (network namespaces, AF_PACKET)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipping live capture: the ip command (iproute2) is missing")
	}
	n := rand.IntN(250) + 1
	ns := fmt.Sprintf("ngtest-%d-%d", os.Getpid(), n)
	hostIf, peerIf := fmt.Sprintf("ngh%d", n), fmt.Sprintf("ngp%d", n)
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	ip("netns", "add", ns)
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", hostIf).Run()
		exec.Command("ip", "netns", "del", ns).Run()
	})
	ip("link", "add", hostIf, "type", "veth", "peer", "name", peerIf, "netns", ns)
	ip("addr", "add", fmt.Sprintf("10.203.%d.1/30", n), "dev", hostIf)
	ip("link", "set", hostIf, "up")
	ip("-n", ns, "addr", "add", fmt.Sprintf("10.203.%d.2/30", n), "dev", peerIf)
	ip("-n", ns, "link", "set", peerIf, "up")
	ip("-n", ns, "link", "set", "lo", "up")
	return hostIf, fmt.Sprintf("10.203.%d.2", n)
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
