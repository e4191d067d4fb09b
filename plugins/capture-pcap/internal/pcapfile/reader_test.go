package pcapfile

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/google/gopacket/pcapgo"
)

// The reader must return exactly what gopacket's pcapgo readers (an
// independent implementation) return for well-formed files.
func TestMatchesPcapgo(t *testing.T) {
	for _, name := range []string{"get.pcap", "nmap-vsn.pcap", "wikipedia.pcapng", "lo-sll2.pcap", "vlan-ipv6.pcap"} {
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile("../../testdata/" + name)
			if err != nil {
				t.Fatal(err)
			}
			var next func() ([]byte, int64, int, error)
			if bytes.HasPrefix(raw, []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
				ng, err := pcapgo.NewNgReader(bytes.NewReader(raw), pcapgo.DefaultNgReaderOptions)
				if err != nil {
					t.Fatal(err)
				}
				next = func() ([]byte, int64, int, error) {
					d, ci, err := ng.ReadPacketData()
					return d, ci.Timestamp.UnixNano(), ci.Length, err
				}
			} else {
				pr, err := pcapgo.NewReader(bytes.NewReader(raw))
				if err != nil {
					t.Fatal(err)
				}
				next = func() ([]byte, int64, int, error) {
					d, ci, err := pr.ReadPacketData()
					return d, ci.Timestamp.UnixNano(), ci.Length, err
				}
			}
			r, err := NewReader(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			var rec Record
			n := 0
			for {
				wantData, wantTS, wantLen, wantErr := next()
				err := r.Next(&rec)
				if wantErr == io.EOF {
					if err != io.EOF {
						t.Fatalf("record %d: pcapgo ends, we return %v", n+1, err)
					}
					break
				}
				if wantErr != nil || err != nil {
					t.Fatalf("record %d: pcapgo %v, we %v", n+1, wantErr, err)
				}
				n++
				if !bytes.Equal(rec.Data, wantData) || rec.Timestamp != wantTS || rec.Length != wantLen {
					t.Fatalf("record %d differs: ts %d/%d len %d/%d", n, rec.Timestamp, wantTS, rec.Length, wantLen)
				}
			}
			if n == 0 || r.Records() != uint64(n) {
				t.Fatalf("read %d records, Records() = %d", n, r.Records())
			}
			if r.Offset() != int64(len(raw)) {
				t.Errorf("Offset() = %d at the end, file has %d bytes", r.Offset(), len(raw))
			}
		})
	}
}

func TestOffsetsAndErrors(t *testing.T) {
	raw, err := os.ReadFile("../../testdata/get.pcap")
	if err != nil {
		t.Fatal(err)
	}
	// Record 1 of get.pcap starts at 24 and has caplen 78 (tshark frame 1:
	// 78 bytes), so record 2 starts at 24+16+78 = 118.
	r, _ := NewReader(bytes.NewReader(raw))
	var rec Record
	if err := r.Next(&rec); err != nil || len(rec.Data) != 78 || r.Offset() != 118 {
		t.Fatalf("first record: %v, %d bytes, offset %d; want 78 bytes, offset 118", err, len(rec.Data), r.Offset())
	}
	// Cut inside record 2's data: ErrTruncated at offset 118, record 2.
	r, _ = NewReader(bytes.NewReader(raw[:130]))
	_ = r.Next(&rec)
	err = r.Next(&rec)
	var e *Error
	if !errors.Is(err, ErrTruncated) || !errors.As(err, &e) || e.Offset != 118 || e.Record != 2 {
		t.Fatalf("cut file: %v; want ErrTruncated at offset 118, record 2", err)
	}
	// An absurd caplen in record 2.
	bad := bytes.Clone(raw)
	copy(bad[118+8:], []byte{0x00, 0xff, 0xff, 0xff})
	r, _ = NewReader(bytes.NewReader(bad))
	_ = r.Next(&rec)
	err = r.Next(&rec)
	if !errors.As(err, &e) || e.Offset != 118 || e.Record != 2 || errors.Is(err, ErrTruncated) {
		t.Fatalf("absurd caplen: %v", err)
	}
	// Not a capture at all.
	if _, err := NewReader(bytes.NewReader([]byte("hello, this is not a capture file"))); err == nil {
		t.Fatal("text accepted as a capture")
	}
	if _, err := NewReader(bytes.NewReader(nil)); err == nil {
		t.Fatal("empty input accepted")
	}
}

func FuzzReader(f *testing.F) {
	for _, name := range []string{"get.pcap", "wikipedia.pcapng"} {
		raw, err := os.ReadFile("../../testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw[:min(len(raw), 600)])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := NewReader(bytes.NewReader(b))
		if err != nil {
			return
		}
		var rec Record
		for i := 0; i < 1000; i++ {
			if err := r.Next(&rec); err != nil {
				return
			}
		}
	})
}
