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
	"unsafe"

	"github.com/google/gopacket"
	"golang.org/x/sys/unix"

	"github.com/netguardian/netguardian/sdk"
	"github.com/netguardian/netguardian/sdk/decode"
)

// Live capture reads an AF_PACKET socket (SOCK_RAW, all protocols) bound to
// one interface, without cgo or libpcap:
//
//   - the socket is opened with protocol 0 (it receives nothing), the BPF
//     filter is attached, and only then is it bound with ETH_P_ALL, so no
//     unfiltered packet slips in;
//   - promiscuous mode with PACKET_ADD_MEMBERSHIP (dropped with the socket);
//   - timestamps from SO_TIMESTAMPNS; the wire length from MSG_TRUNC;
//   - SO_RCVTIMEO of 100 ms, so an idle link still notices cancellation and
//     the writer's flush timer and the counters keep going;
//   - kernel drops from PACKET_STATISTICS (tp_drops), added up;
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

// liveSocket is an open, bound, filtered packet socket.
type liveSocket struct {
	fd       int
	loopback bool
	buf      []byte
	oob      []byte
	name     unix.RawSockaddrLinklayer
	iov      unix.Iovec
	msg      unix.Msghdr
	drops    uint64
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
	s := &liveSocket{fd: fd, loopback: li.loopback}
	fail := func(what string, err error) (*liveSocket, liveInfo, error) {
		unix.Close(fd)
		return nil, li, fmt.Errorf("interface %q: %s: %w", name, what, err)
	}
	if prog := p.filters[li.linkType]; len(prog) > 0 {
		filter := make([]unix.SockFilter, len(prog))
		for i, r := range prog {
			filter[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
		}
		fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
		if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
			return fail(fmt.Sprintf("attaching bpf %q", p.cfg.BPF), err)
		}
	}
	bufBytes := p.cfg.BufferMB << 20
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, bufBytes); err != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, bufBytes) // without CAP_NET_ADMIN: up to rmem_max
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		return fail("SO_TIMESTAMPNS", err)
	}
	tv := unix.NsecToTimeval(int64(readTimeout))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fail("SO_RCVTIMEO", err)
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
	_, _ = unix.GetsockoptTpacketStats(fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	s.buf = make([]byte, p.cfg.Snaplen)
	s.oob = make([]byte, unix.CmsgSpace(int(unsafe.Sizeof(unix.Timespec{}))))
	s.iov.Base = &s.buf[0]
	s.iov.SetLen(len(s.buf))
	s.msg.Name = (*byte)(unsafe.Pointer(&s.name))
	s.msg.Iov = &s.iov
	s.msg.Iovlen = 1
	s.msg.Control = &s.oob[0]
	return s, li, nil
}

func (s *liveSocket) Close() error { return unix.Close(s.fd) }

// read receives one frame: its captured bytes, wire length and timestamp
// (ns). ok is false when the read timed out or the frame is to be skipped.
func (s *liveSocket) read() (data []byte, wire int, ts int64, ok bool, err error) {
	s.msg.Namelen = uint32(unsafe.Sizeof(s.name))
	s.msg.SetControllen(len(s.oob))
	s.msg.Flags = 0
	n, _, e := unix.Syscall(unix.SYS_RECVMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&s.msg)), unix.MSG_TRUNC)
	if e != 0 {
		if e == unix.EAGAIN || e == unix.EINTR {
			return nil, 0, 0, false, nil
		}
		return nil, 0, 0, false, e
	}
	if s.loopback && s.name.Pkttype == unix.PACKET_OUTGOING {
		return nil, 0, 0, false, nil
	}
	wire = int(n)
	data = s.buf[:min(wire, len(s.buf))]
	ts = s.timestamp()
	return data, wire, ts, true, nil
}

// timestamp finds SCM_TIMESTAMPNS among the control messages.
func (s *liveSocket) timestamp() int64 {
	oob := s.oob[:s.msg.Controllen]
	hdr := int(unsafe.Sizeof(unix.Cmsghdr{}))
	for len(oob) >= hdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < hdr || l > len(oob) {
			break
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS && l >= unix.CmsgLen(int(unsafe.Sizeof(unix.Timespec{}))) {
			t := (*unix.Timespec)(unsafe.Pointer(&oob[unix.CmsgLen(0)]))
			return t.Nano()
		}
		oob = oob[min(unix.CmsgSpace(l-unix.CmsgLen(0)), len(oob)):]
	}
	return time.Now().UnixNano()
}

// kernelDrops adds up PACKET_STATISTICS (which resets on every read).
func (s *liveSocket) kernelDrops() uint64 {
	if st, err := unix.GetsockoptTpacketStats(s.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
		s.drops += uint64(st.Drops)
	}
	return s.drops
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
	defer func() {
		c.KernelDrops = s.kernelDrops()
		p.publish(w, c)
	}()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		data, wire, ts, ok, err := s.read()
		if err != nil {
			if errors.Is(err, unix.ENETDOWN) {
				return fmt.Errorf("%s: interface %q went down: %w", pluginName, p.cfg.Interface, err)
			}
			return fmt.Errorf("%s: interface %q: recvmsg: %w", pluginName, p.cfg.Interface, err)
		}
		if ok {
			ci.Timestamp = time.Unix(0, ts)
			ci.CaptureLength, ci.Length = len(data), wire
			if err := dec.Decode(data, ci, &pkt); err != nil {
				c.DecodeErrors++
			} else if pkt.Flags&sdk.PacketNonIP != 0 {
				c.NonIP++
			}
			c.Packets++
			c.BytesRead += uint64(wire)
			if err := w.Write(&pkt); err != nil {
				return err
			}
		}
		if !ok || c.Packets%publishEvery == 0 {
			if now := time.Now(); !ok || now.Sub(last) >= readTimeout {
				last = now
				c.KernelDrops = s.kernelDrops()
				p.publish(w, c)
			}
		}
	}
}
