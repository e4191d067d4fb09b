package window

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/netguardian/netguardian/sdk"
	"github.com/netguardian/netguardian/sdk/decode"
)

// sharedData returns ../shared/data beside the repository root, or "" when
// it is absent.
func sharedData(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		up := filepath.Dir(dir)
		if up == dir {
			return ""
		}
		dir = up
	}
	d := filepath.Join(dir, "..", "shared", "data")
	if _, err := os.Stat(d); err != nil {
		return ""
	}
	return d
}

// readCapture reads a pcap or pcapng file and decodes every frame with
// sdk/decode. Frames that fail to decode are kept (decode fills them in as
// non-IP), as a capture plugin would pass them on.
func readCapture(t *testing.T, path string) []sdk.Packet {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	magic, err := br.Peek(4)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	type reader interface {
		ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	}
	var r reader
	var link func(ci gopacket.CaptureInfo) decode.LinkType
	if binary.LittleEndian.Uint32(magic) == 0x0a0d0d0a {
		ng, err := pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		r = ng
		link = func(ci gopacket.CaptureInfo) decode.LinkType {
			if i, err := ng.Interface(ci.InterfaceIndex); err == nil {
				return decode.LinkType(i.LinkType)
			}
			return decode.LinkType(ng.LinkType())
		}
	} else {
		pr, err := pcapgo.NewReader(br)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		r = pr
		link = func(gopacket.CaptureInfo) decode.LinkType { return decode.LinkType(pr.LinkType()) }
	}
	decoders := map[decode.LinkType]*decode.Decoder{}
	var out []sdk.Packet
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: frame %d: %v", path, len(out)+1, err)
		}
		lt := link(ci)
		d := decoders[lt]
		if d == nil {
			d = decode.NewDecoder(lt)
			decoders[lt] = d
		}
		var p sdk.Packet
		_ = d.Decode(data, ci, &p) // on error p is filled in as non-IP
		p.Frame = nil
		out = append(out, p)
	}
}

// writePcap writes Ethernet frames to a classic pcap file.
func writePcap(t *testing.T, path string, frames [][]byte, ts []int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriterNanos(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for i, fr := range frames {
		ci := gopacket.CaptureInfo{Timestamp: timeOf(ts[i]), CaptureLength: len(fr), Length: len(fr)}
		if err := w.WritePacket(ci, fr); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
