//go:build linux

package main

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rxRing is a TPACKET_V3 receive ring shared with the kernel. The kernel
// fills blocks of blockSize bytes with as many frames as fit and hands a
// block over (TP_STATUS_USER) when it is full or blockTimeout after its
// first frame; we read every frame of the block in place and give it back
// (TP_STATUS_KERNEL). One poll wakes us per block, not per frame, and no
// frame is copied to user space.
//
// github.com/google/gopacket/afpacket (the gopacket the project uses) needs
// cgo, so the ring is read here with golang.org/x/sys/unix.
type rxRing struct {
	fd        int
	mem       []byte // the mapping: blocks back to back
	blockSize int
	blocks    int
	cur       int // the block to read next
	pfd       [1]unix.PollFd
}

// blockTimeout is how long the kernel waits for a block to fill before it
// hands over what it has: the delay a frame may take on a quiet link.
const blockTimeout = 10 * time.Millisecond

// ringFrameSize is tpacket_req3's frame size. V3 packs frames of any size
// into a block; the kernel only checks that a block holds whole frames of
// this size, so it needs no relation to snaplen.
const ringFrameSize = 2048

// Offsets in the kernel's structures (linux/if_packet.h).
const (
	blockHdrOffset   = 8  // tpacket_block_desc.hdr, after version and offset_to_priv
	tpacket3HdrLen   = 48 // TPACKET_ALIGN(sizeof(struct tpacket3_hdr)); sockaddr_ll follows
	sllPkttypeOffset = 10 // sockaddr_ll.sll_pkttype
)

// newRxRing switches the bound-to-nothing packet socket fd to TPACKET_V3,
// sets up a ring of blocks × blockSize bytes and maps it.
func newRxRing(fd, blockSize, blocks int) (*rxRing, error) {
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return nil, fmt.Errorf("PACKET_VERSION TPACKET_V3: %w", err)
	}
	req := unix.TpacketReq3{
		Block_size:     uint32(blockSize),
		Block_nr:       uint32(blocks),
		Frame_size:     ringFrameSize,
		Frame_nr:       uint32(blockSize / ringFrameSize * blocks),
		Retire_blk_tov: uint32(blockTimeout / time.Millisecond),
	}
	if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		if errors.Is(err, unix.ENOMEM) {
			return nil, fmt.Errorf("PACKET_RX_RING of %d blocks of %d bytes: %w (lower ring_size)", blocks, blockSize, err)
		}
		return nil, fmt.Errorf("PACKET_RX_RING of %d blocks of %d bytes: %w", blocks, blockSize, err)
	}
	mem, err := unix.Mmap(fd, 0, blockSize*blocks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mapping the %d-byte ring: %w", blockSize*blocks, err)
	}
	r := &rxRing{fd: fd, mem: mem, blockSize: blockSize, blocks: blocks}
	r.pfd[0] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN | unix.POLLERR}
	return r, nil
}

func (r *rxRing) Close() error {
	if r.mem == nil {
		return nil
	}
	err := unix.Munmap(r.mem)
	r.mem = nil
	return err
}

// status is the current block's block_status, which the kernel and we
// hand back and forth; it is only read and written atomically so the
// frames the kernel wrote before setting it are visible after we see it.
func (r *rxRing) status() *uint32 {
	return (*uint32)(unsafe.Pointer(&r.mem[r.cur*r.blockSize+blockHdrOffset]))
}

// ready reports whether the kernel has handed the current block over.
func (r *rxRing) ready() bool {
	return atomic.LoadUint32(r.status())&unix.TP_STATUS_USER != 0
}

// wait polls until the current block may be ready or timeout passes. A
// socket error (the interface went down) is returned.
func (r *rxRing) wait(timeout time.Duration) error {
	r.pfd[0].Revents = 0
	_, err := unix.Poll(r.pfd[:], int(timeout/time.Millisecond))
	if err != nil && err != unix.EINTR {
		return fmt.Errorf("poll: %w", err)
	}
	if r.pfd[0].Revents&unix.POLLERR != 0 {
		if e, err := unix.GetsockoptInt(r.fd, unix.SOL_SOCKET, unix.SO_ERROR); err == nil && e != 0 {
			return unix.Errno(e)
		}
	}
	return nil
}

// ringFrame is one frame of a block: the captured bytes (in the ring),
// the length on the wire, the kernel's timestamp and the packet type.
type ringFrame struct {
	data    []byte
	wire    int
	ts      int64
	pkttype uint8
}

// eachFrame calls fn for every frame of the current block, which must be
// ready. The frames' bytes are valid until release. A frame whose offsets
// leave the block stops the walk (the kernel never writes one).
func (r *rxRing) eachFrame(fn func(*ringFrame) error) error {
	blk := r.mem[r.cur*r.blockSize : (r.cur+1)*r.blockSize]
	h := (*unix.TpacketHdrV1)(unsafe.Pointer(&blk[blockHdrOffset]))
	off := int(h.Offset_to_first_pkt)
	var f ringFrame
	for i := uint32(0); i < h.Num_pkts; i++ {
		if off < blockHdrOffset || off+tpacket3HdrLen+sllPkttypeOffset >= len(blk) {
			return nil
		}
		ph := (*unix.Tpacket3Hdr)(unsafe.Pointer(&blk[off]))
		start := off + int(ph.Mac)
		end := start + int(ph.Snaplen)
		if end > len(blk) {
			return nil
		}
		f.data = blk[start:end:end]
		f.wire = int(ph.Len)
		f.ts = int64(ph.Sec)*1e9 + int64(ph.Nsec)
		f.pkttype = blk[off+tpacket3HdrLen+sllPkttypeOffset]
		if err := fn(&f); err != nil {
			return err
		}
		if ph.Next_offset == 0 {
			return nil
		}
		off += int(ph.Next_offset)
	}
	return nil
}

// release hands the current block back to the kernel and moves on.
func (r *rxRing) release() {
	atomic.StoreUint32(r.status(), unix.TP_STATUS_KERNEL)
	r.cur = (r.cur + 1) % r.blocks
}
