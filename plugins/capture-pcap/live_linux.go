//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/google/gopacket"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/netguardian/netguardian/sdk"
	"github.com/netguardian/netguardian/sdk/decode"
)

// Live capture reads an AF_PACKET socket (SOCK_RAW, all protocols) bound to
// one interface through a TPACKET_V3 ring (see rxRing), without cgo or
// libpcap:
//
//   - the socket is opened with protocol 0 (it receives nothing), the BPF
//     filter is attached (without a filter, a one-instruction program that
//     cuts frames to snaplen, when snaplen is below the maximum), the ring
//     is set up and mapped, and only then is the socket bound with
//     ETH_P_ALL, so no unfiltered packet slips in;
//   - promiscuous mode with PACKET_ADD_MEMBERSHIP (dropped with the socket);
//   - timestamps and wire lengths from the ring's frame headers;
//   - poll with a 100 ms timeout, so an idle link still notices
//     cancellation and the writer's flush timer and the counters keep going;
//   - kernel drops and ring freezes from PACKET_STATISTICS, added up;
//   - on loopback interfaces outgoing copies are skipped, as libpcap does,
//     so each packet is seen once.
//
// The kernel strips 802.1Q tags before the socket sees frames, so a
// filter using the `vlan` keyword does not match live traffic.

const readTimeout = 100 * time.Millisecond

// ARPHRD_ values of /sys/class/net/IF/type.
const (
	arphrdEther    = 1
	arphrdLoopback = 772
	arphrdNone     = 65534
)

type liveInfo struct {
	ifindex  int
	linkType uint32
	loopback bool
}

func interfaceInfo(name string) (liveInfo, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return liveInfo{}, fmt.Errorf("interface %q: %w", name, err)
	}
	raw, err := os.ReadFile("/sys/class/net/" + name + "/type")
	if err != nil {
		return liveInfo{}, fmt.Errorf("interface %q: link type: %w", name, err)
	}
	hw, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		return liveInfo{}, fmt.Errorf("interface %q: link type %q: %w", name, raw, err)
	}
	li := liveInfo{ifindex: ifi.Index}
	switch hw {
	case arphrdEther:
		li.linkType = uint32(decode.LinkTypeEthernet)
	case arphrdLoopback:
		li.linkType, li.loopback = uint32(decode.LinkTypeEthernet), true
	case arphrdNone: // tun and other point-to-point links carrying bare IP
		li.linkType = uint32(decode.LinkTypeRaw)
	default:
		return liveInfo{}, fmt.Errorf("interface %q has hardware type %d; live capture supports Ethernet, loopback and raw-IP (tun) interfaces", name, hw)
	}
	return li, nil
}

func (p *pcapCapture) configureLive() error {
	li, err := interfaceInfo(p.cfg.Interface)
	if err != nil {
		return fmt.Errorf("%s: %w", pluginName, err)
	}
	if p.cfg.BPF != "" {
		if err := p.compileFor(li.linkType); err != nil {
			return fmt.Errorf("%s: %w", pluginName, err)
		}
	}
	// Fail now, not at Capture, when we may not open packet sockets.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s: interface %q: opening a packet socket: %w (live capture needs root or CAP_NET_RAW)", pluginName, p.cfg.Interface, err)
	}
	unix.Close(fd)
	return nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// liveSocket is an open, bound, filtered packet socket and its ring.
type liveSocket struct {
	fd      int
	ring    *rxRing
	drops   uint64 // tp_drops, added up
	freezes uint64 // tp_freeze_q_cnt, added up
}

func (p *pcapCapture) openLive() (*liveSocket, liveInfo, error) {
	name := p.cfg.Interface
	li, err := interfaceInfo(name)
	if err != nil {
		return nil, li, err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, li, fmt.Errorf("interface %q: packet socket: %w", name, err)
	}
	s := &liveSocket{fd: fd}
	fail := func(what string, err error) (*liveSocket, liveInfo, error) {
		s.Close()
		return nil, li, fmt.Errorf("interface %q: %s: %w", name, what, err)
	}
	prog := p.filters[li.linkType]
	what := fmt.Sprintf("attaching bpf %q", p.cfg.BPF)
	if len(prog) == 0 && p.cfg.Snaplen < maxSnaplen {
		// "ret #snaplen": the kernel copies no more than we keep.
		prog = []bpf.RawInstruction{{Op: unix.BPF_RET | unix.BPF_K, K: uint32(p.cfg.Snaplen)}}
		what = fmt.Sprintf("attaching the snaplen %d program", p.cfg.Snaplen)
	}
	if len(prog) > 0 {
		filter := make([]unix.SockFilter, len(prog))
		for i, r := range prog {
			filter[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
		}
		fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
		if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
			return fail(what, err)
		}
	}
	if li.loopback {
		// Kernels before 4.20 lack it; the ring loop skips outgoing frames anyway.
		_ = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
	}
	if s.ring, err = newRxRing(fd, p.cfg.blockBytes, p.cfg.ringBytes/p.cfg.blockBytes); err != nil {
		return fail("ring", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: li.ifindex}); err != nil {
		return fail("bind", err)
	}
	if p.cfg.Promisc {
		mreq := unix.PacketMreq{Ifindex: int32(li.ifindex), Type: unix.PACKET_MR_PROMISC}
		if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
			return fail("promiscuous mode", err)
		}
	}
	// Reset the statistics: what was counted before bind is not ours.
	_, _ = unix.GetsockoptTpacketStatsV3(fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	return s, li, nil
}

func (s *liveSocket) Close() error {
	var err error
	if s.ring != nil {
		err = s.ring.Close()
	}
	return errors.Join(err, unix.Close(s.fd))
}

// readStats adds up PACKET_STATISTICS (which resets on every read): frames
// dropped because the ring was full, and how often it filled up.
func (s *liveSocket) readStats() {
	if st, err := unix.GetsockoptTpacketStatsV3(s.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
		s.drops += uint64(st.Drops)
		s.freezes += uint64(st.Freeze_q_cnt)
	}
}

func (p *pcapCapture) captureLive(ctx context.Context, w *sdk.PacketWriter) error {
	s, li, err := p.openLive()
	if err != nil {
		return fmt.Errorf("%s: %w", pluginName, err)
	}
	defer s.Close()
	dec := decode.NewDecoder(decode.LinkType(li.linkType))
	var (
		c    sdk.CaptureCounters
		pkt  sdk.Packet
		ci   gopacket.CaptureInfo
		last = time.Now()
	)
	publish := func() {
		s.readStats()
		c.KernelDrops = s.drops
		p.publishLive(w, c, s.freezes)
	}
	defer publish()
	snaplen := p.cfg.Snaplen
	handle := func(f *ringFrame) error {
		if li.loopback && f.pkttype == unix.PACKET_OUTGOING {
			return nil
		}
		data := f.data[:min(len(f.data), snaplen)]
		ci.Timestamp = time.Unix(0, f.ts)
		ci.CaptureLength, ci.Length = len(data), f.wire
		if err := dec.Decode(data, ci, &pkt); err != nil {
			c.DecodeErrors++
		} else if pkt.Flags&sdk.PacketNonIP != 0 {
			c.NonIP++
		}
		c.Packets++
		c.BytesRead += uint64(f.wire)
		return w.Write(&pkt)
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if s.ring.ready() {
			err := s.ring.eachFrame(handle)
			s.ring.release()
			if err != nil {
				return err
			}
		} else if err := s.ring.wait(readTimeout); err != nil {
			if errors.Is(err, unix.ENETDOWN) {
				return fmt.Errorf("%s: interface %q went down: %w", pluginName, p.cfg.Interface, err)
			}
			return fmt.Errorf("%s: interface %q: %w", pluginName, p.cfg.Interface, err)
		}
		if now := time.Now(); now.Sub(last) >= readTimeout {
			last = now
			publish()
		}
	}
}

// publishLive publishes the counters and the ring's freeze count.
func (p *pcapCapture) publishLive(w *sdk.PacketWriter, c sdk.CaptureCounters, freezes uint64) {
	p.mu.Lock()
	p.stats.freezes = freezes
	p.mu.Unlock()
	p.publish(w, c)
}
