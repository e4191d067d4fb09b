//go:build linux

package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/netguardian/netguardian/sdk"
)

// BenchmarkLiveCapture blasts 60-byte UDP frames across a veth pair, from
// raw packet sockets in the peer's namespace (one sending goroutine per
// CPU, each with its share of the rate) to the end the plugin captures on,
// at increasing offered rates (one second each), then as fast as the
// senders go. It reports the highest rate at which every frame was
// captured with no kernel drop, and at top speed the rates sent and
// received and the kernel drops. Each iteration is one full ramp; with
// -benchtime Nx the metrics are the medians of N ramps.
//
// The senders and the capture share the machine's cores, and the kernel's
// side of both (veth transmit, the packet socket's copy) runs in the
// senders' system calls, so the rates are those of the whole machine, not
// of the capture alone; on a busy machine they are the senders'. The CPU
// time the capture's thread spends per captured frame (capture-cpu-ns/pkt,
// over the whole ramp) depends far less on the load. Run as root:
//
//	go test -run '^$' -bench LiveCapture -benchtime 3x ./plugins/capture-pcap
func BenchmarkLiveCapture(b *testing.B) {
	link := newVethLink(b)
	var senders []*peerSender
	for range runtime.NumCPU() {
		senders = append(senders, openPeerSender(b, link))
	}
	var zeroLoss, topSent, topRecv, topDrops, cpuPerPkt []float64
	for i := 0; i < b.N; i++ {
		r := runRamp(b, link, senders)
		zeroLoss = append(zeroLoss, r.zeroLossRate)
		topSent = append(topSent, r.top.sentRate())
		topRecv = append(topRecv, r.top.recvRate())
		topDrops = append(topDrops, float64(r.top.drops))
		cpuPerPkt = append(cpuPerPkt, r.cpuPerPkt)
	}
	b.ReportMetric(median(zeroLoss), "zero-loss-pps")
	b.ReportMetric(median(topSent), "top-sent-pps")
	b.ReportMetric(median(topRecv), "top-recv-pps")
	b.ReportMetric(median(topDrops), "top-kernel-drops")
	b.ReportMetric(median(cpuPerPkt), "capture-cpu-ns/pkt")
	b.ReportMetric(0, "ns/op")
}

// offeredRates are the ramp's steps (frames per second).
var offeredRates = []float64{50e3, 100e3, 200e3, 300e3, 400e3, 500e3, 650e3, 800e3, 1e6, 1.25e6, 1.5e6, 2e6}

const (
	blastPort     = 40100
	blastFrameLen = 60 // the shortest Ethernet frame (no FCS)
	blastBatch    = 64 // frames per sendmmsg
	blastFrames   = 1024
	stepDuration  = time.Second
)

type stepResult struct {
	offered  float64 // frames/s asked for (0: top speed)
	sent     int64
	got      int64 // captured by the plugin
	drops    uint64
	sendTime time.Duration
	recvTime time.Duration // from the first frame sent to the last captured
	cpu      time.Duration // CPU time of the capture's thread
}

func (s stepResult) sentRate() float64 { return float64(s.sent) / s.sendTime.Seconds() }
func (s stepResult) recvRate() float64 {
	if s.recvTime <= 0 {
		return 0
	}
	return float64(s.got) / s.recvTime.Seconds()
}
func (s stepResult) lossless() bool { return s.drops == 0 && s.got == s.sent }

type rampResult struct {
	zeroLossRate float64 // the highest rate sent with nothing lost; 0 if none
	top          stepResult
	cpuPerPkt    float64 // the capture thread's CPU ns per frame captured, all steps
}

// blastCounter counts the benchmark's frames among the captured packets.
type blastCounter struct {
	got  atomic.Int64
	last atomic.Int64 // unix ns of the last batch that had some
}

func (c *blastCounter) send(b *sdk.PacketBatch) error {
	n := 0
	for i := 0; i < b.Len(); i++ {
		if b.DstPorts[i] == blastPort && b.Protocols[i] == sdk.ProtoUDP {
			n++
		}
	}
	if n > 0 {
		c.got.Add(int64(n))
		c.last.Store(time.Now().UnixNano())
	}
	return nil
}

func runRamp(b *testing.B, link vethLink, senders []*peerSender) rampResult {
	b.Logf("load before: %s", loadavg())
	p := &pcapCapture{}
	js, _ := json.Marshal(map[string]any{"interface": link.hostIf})
	if err := p.Configure(context.Background(), sdk.Config{JSON: js}); err != nil {
		b.Fatal(err)
	}
	var counter blastCounter
	// A short flush interval, so the time of the last batch is that of the
	// last frame captured (full batches go at once anyway).
	w := sdk.NewPacketWriter(sdk.Runtime{FlushInterval: 10 * time.Millisecond}, 0, counter.send)
	ctx, cancel := context.WithCancel(context.Background())
	w.Start(ctx)
	done := make(chan error, 1)
	tids := make(chan int, 1)
	go func() {
		// One thread, so its CPU time is the capture's (the writer's sends
		// included).
		runtime.LockOSThread()
		tids <- unix.Gettid()
		done <- p.Capture(ctx, 0, w)
	}()
	tid := <-tids
	defer func() {
		cancel()
		if err := <-done; err != context.Canceled {
			b.Errorf("Capture returned %v, want context.Canceled", err)
		}
	}()
	// Wait until the capture runs.
	deadline := time.Now().Add(10 * time.Second)
	for counter.got.Load() == 0 {
		if time.Now().After(deadline) {
			b.Fatal("the capture never saw a frame")
		}
		if _, err := senders[0].send(1); err != nil {
			b.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	settle(p, &counter)

	var r rampResult
	var cpuAll time.Duration
	var gotAll int64
	losses := 0
	step := func(rate float64) stepResult {
		got0, drops0, cpu0 := counter.got.Load(), p.Stats().Counters["kernel_drops"], threadCPU(b, tid)
		start := time.Now()
		sent, took, err := blastAll(senders, rate, stepDuration)
		if err != nil {
			b.Fatal(err)
		}
		settle(p, &counter)
		s := stepResult{offered: rate, sent: int64(sent), sendTime: took,
			got: counter.got.Load() - got0, drops: p.Stats().Counters["kernel_drops"] - drops0,
			recvTime: time.Unix(0, counter.last.Load()).Sub(start), cpu: threadCPU(b, tid) - cpu0}
		cpuAll += s.cpu
		gotAll += s.got
		b.Logf("offered %8.0f/s: sent %8d (%8.0f/s) captured %8d (%8.0f/s) kernel drops %7d, lost elsewhere %7d, capture CPU %4.0f ns/frame  load %s",
			rate, s.sent, s.sentRate(), s.got, s.recvRate(), s.drops, s.sent-s.got-int64(s.drops), float64(s.cpu)/float64(max(s.got, 1)), loadavg())
		if s.lossless() {
			r.zeroLossRate = max(r.zeroLossRate, s.sentRate())
		}
		return s
	}
	for _, rate := range offeredRates {
		s := step(rate)
		if !s.lossless() {
			losses++
		} else {
			losses = 0
		}
		if losses == 2 || s.sentRate() < 0.9*rate { // past the limit, or the senders'
			break
		}
	}
	r.top = step(0)
	r.cpuPerPkt = float64(cpuAll) / float64(max(gotAll, 1))
	b.Logf("zero-loss rate %.0f/s; top speed: sent %.0f/s, captured %.0f/s, kernel drops %d; capture CPU %.0f ns/frame",
		r.zeroLossRate, r.top.sentRate(), r.top.recvRate(), r.top.drops, r.cpuPerPkt)
	return r
}

// threadCPU is the CPU time thread tid of this process has used, from its
// per-thread CPU clock (what pthread_getcpuclockid gives).
func threadCPU(b *testing.B, tid int) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(int32(^tid<<3|6), &ts); err != nil { // CPUCLOCK_SCHED of thread tid
		b.Fatalf("thread %d CPU clock: %v", tid, err)
	}
	return time.Duration(ts.Nano())
}

// settle waits until the capture has caught up: no new frame for 300 ms
// (more than the 100 ms after which an idle capture publishes its
// counters), or 5 s.
func settle(p *pcapCapture, c *blastCounter) {
	last, since := c.got.Load(), time.Now()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); {
		time.Sleep(50 * time.Millisecond)
		if n := c.got.Load(); n != last {
			last, since = n, time.Now()
		} else if time.Since(since) >= 300*time.Millisecond {
			return
		}
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func loadavg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(raw))
	return strings.Join(f[:min(3, len(f))], " ")
}

// peerSender is a raw packet socket opened in the peer's namespace and
// bound to the peer end, so the frames it sends arrive on the host end.
type peerSender struct {
	fd     int
	frames [][]byte
	iovs   []unix.Iovec
	msgs   []unix.Mmsghdr
	next   int
}

func openPeerSender(tb testing.TB, l vethLink) *peerSender {
	tb.Helper()
	s := &peerSender{fd: -1}
	var peerMAC net.HardwareAddr
	err := inNetns(l.netns, func() error {
		ifi, err := net.InterfaceByName(l.peerIf)
		if err != nil {
			return err
		}
		peerMAC = ifi.HardwareAddr
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		s.fd = fd
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifi.Index}); err != nil {
			return fmt.Errorf("bind to %s: %w", l.peerIf, err)
		}
		// Straight to the driver: the sender's cost is not the figure.
		return unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1)
	})
	if s.fd >= 0 {
		tb.Cleanup(func() { unix.Close(s.fd) })
	}
	if err != nil {
		tb.Fatalf("sender in namespace %s: %v", l.netns, err)
	}
	src, dst := net.ParseIP(l.peerAddr).To4(), net.ParseIP(l.hostAddr).To4()
	for i := 0; i < blastFrames; i++ {
		f := make([]byte, blastFrameLen)
		// To a MAC that is not the host end's: the host's IP stack drops
		// the frame at once, so only the capture spends time on it.
		copy(f, []byte{0x02, 0x00, 0x5e, 0x10, 0x00, 0x01})
		copy(f[6:], peerMAC)
		binary.BigEndian.PutUint16(f[12:], 0x0800)
		ip := f[14:34]
		ip[0], ip[8], ip[9] = 0x45, 64, unix.IPPROTO_UDP
		binary.BigEndian.PutUint16(ip[2:], blastFrameLen-14)
		copy(ip[12:], src)
		copy(ip[16:], dst)
		binary.BigEndian.PutUint16(ip[10:], ipChecksum(ip))
		udp := f[34:]
		binary.BigEndian.PutUint16(udp[0:], uint16(20000+i))
		binary.BigEndian.PutUint16(udp[2:], blastPort)
		binary.BigEndian.PutUint16(udp[4:], blastFrameLen-34)
		binary.BigEndian.PutUint32(udp[8:], uint32(i))
		s.frames = append(s.frames, f)
	}
	s.iovs = make([]unix.Iovec, blastBatch)
	s.msgs = make([]unix.Mmsghdr, blastBatch)
	for i := range s.msgs {
		s.msgs[i].Hdr.Iov = &s.iovs[i]
		s.msgs[i].Hdr.Iovlen = 1
	}
	return s
}

func ipChecksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// send sends up to n (≤ blastBatch) frames with one sendmmsg and returns
// how many the kernel took.
func (s *peerSender) send(n int) (int, error) {
	n = min(n, blastBatch)
	for i := 0; i < n; i++ {
		f := s.frames[s.next]
		s.next = (s.next + 1) % len(s.frames)
		s.iovs[i].Base = &f[0]
		s.iovs[i].SetLen(len(f))
	}
	for {
		r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&s.msgs[0])), uintptr(n), 0, 0, 0)
		switch {
		case e == unix.EINTR:
			continue
		case e == unix.ENOBUFS || e == unix.EAGAIN:
			return 0, nil
		case e != 0:
			return 0, fmt.Errorf("sendmmsg: %w", e)
		}
		return int(r), nil
	}
}

// blast sends frames at rate per second (0: as fast as it can) for d and
// returns how many it sent and how long that took.
func (s *peerSender) blast(rate float64, d time.Duration) (int, time.Duration, error) {
	start := time.Now()
	sent := 0
	for {
		elapsed := time.Since(start)
		if elapsed >= d {
			return sent, elapsed, nil
		}
		n := blastBatch
		if rate > 0 {
			due := int(rate * elapsed.Seconds())
			if due <= sent {
				time.Sleep(50 * time.Microsecond)
				continue
			}
			n = min(n, due-sent)
		}
		k, err := s.send(n)
		if err != nil {
			return sent, time.Since(start), err
		}
		sent += k
	}
}

// blastAll runs blast on every sender at once, each at its share of rate,
// and returns the frames sent and the longest time taken.
func blastAll(senders []*peerSender, rate float64, d time.Duration) (int, time.Duration, error) {
	type result struct {
		sent int
		took time.Duration
		err  error
	}
	results := make(chan result, len(senders))
	for _, s := range senders {
		go func() {
			n, took, err := s.blast(rate/float64(len(senders)), d)
			results <- result{n, took, err}
		}()
	}
	var total result
	for range senders {
		r := <-results
		total.sent += r.sent
		total.took = max(total.took, r.took)
		total.err = errors.Join(total.err, r.err)
	}
	return total.sent, total.took, total.err
}

// inNetns runs f on an OS thread that has entered the named network
// namespace (sockets opened there stay in it). If the thread cannot go
// back, it stays locked and ends with its goroutine.
func inNetns(name string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open("/var/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns: %w", err)
			return
		}
		ferr := f()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("setns back: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
