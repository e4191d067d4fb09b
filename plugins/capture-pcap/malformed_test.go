package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/netguardian/netguardian/sdk"
)

// get.pcap's records (tshark frame.cap_len): 78, 74, 66, 202, 66, 1514,
// 1514, 1514, 729, 66, 66, 66, 66, 66 bytes; the file has 6335 bytes. With
// a 24-byte file header and 16-byte record headers, record 1 starts at 24,
// record 2 at 118, record 3 at 208, record 14 at 6335-16-66 = 6253.

// A file cut inside its last record: the 13 complete packets are delivered,
// Capture returns nil, and a warning names the file, offset and record.
func TestTruncatedLastRecord(t *testing.T) {
	raw, _ := os.ReadFile(td("get.pcap"))
	path := writeFile(t, "cut.pcap", raw[:6325])
	logw := &testLogWriter{t: t}
	p := &pcapCapture{log: slog.New(slog.NewTextHandler(logw, nil))}
	res := runWith(t, p, map[string]any{"files": []string{path, td("dns53.pcap")}}, 0)
	if res.err != nil {
		t.Fatalf("Capture: %v; a file cut short is a warning, not an error", res.err)
	}
	// 13 packets of cut.pcap, then dns53.pcap's one: the replay goes on.
	if len(res.rows) != 14 || res.rows[13].p.Length != 475 {
		t.Fatalf("%d packets delivered, want 13 + 1", len(res.rows))
	}
	_, full := runCapture(t, map[string]any{"files": []string{td("get.pcap")}}, 0, sdk.Runtime{})
	for i := 0; i < 13; i++ {
		if !samePacket(res.rows[i].p, full.rows[i].p) {
			t.Fatalf("packet %d differs from the intact file's", i+1)
		}
	}
	msg := logw.b.String()
	for _, want := range []string{path, "offset 6253: record 14: file ends inside a record: packet data needs 66 bytes, only 56 left"} {
		if !strings.Contains(msg, want) {
			t.Errorf("warning %q lacks %q", msg, want)
		}
	}
	if st := p.Stats(); st.Counters["truncated_files"] != 1 || !st.Healthy {
		t.Errorf("stats %+v", st)
	}
}

// A record header with an absurd captured length is an error naming file,
// offset and record; the packets before it were delivered.
func TestGarbageRecord(t *testing.T) {
	raw, _ := os.ReadFile(td("get.pcap"))
	bad := bytes.Clone(raw)
	binary.LittleEndian.PutUint32(bad[208+8:], 0xffffff00)
	path := writeFile(t, "garbage.pcap", bad)
	_, res := runCapture(t, map[string]any{"files": []string{path}}, 0, sdk.Runtime{BatchSize: 1})
	want := "capture-pcap: " + path + ": offset 208: record 3: captured length 4294967040 exceeds the limit 262144 (file snaplen 65535)"
	if res.err == nil || res.err.Error() != want {
		t.Fatalf("error %v\nwant  %s", res.err, want)
	}
	if len(res.rows) != 2 {
		t.Errorf("%d packets delivered before the bad record, want 2", len(res.rows))
	}
}

// pcapng: a block whose length field is garbage.
func TestGarbagePcapngBlock(t *testing.T) {
	raw, _ := os.ReadFile(td("wikipedia.pcapng"))
	shb := binary.LittleEndian.Uint32(raw[4:8])           // 108 (xxd)
	idb := binary.LittleEndian.Uint32(raw[shb+4 : shb+8]) // the interface block follows
	epb := shb + idb                                      // first enhanced packet block
	if binary.LittleEndian.Uint32(raw[epb:]) != 6 {
		t.Fatalf("no enhanced packet block at %d", epb)
	}
	epb2 := epb + binary.LittleEndian.Uint32(raw[epb+4:]) // the second packet's block
	bad := bytes.Clone(raw)
	binary.LittleEndian.PutUint32(bad[epb2+4:], 0xfffffff0)
	path := writeFile(t, "garbage.pcapng", bad)
	_, res := runCapture(t, map[string]any{"files": []string{path}}, 0, sdk.Runtime{})
	want := "capture-pcap: " + path + ": offset " + itoa(int(epb2)) + ": record 2: block type 0x6 has invalid length 4294967280"
	if res.err == nil || res.err.Error() != want {
		t.Fatalf("error %v\nwant  %s", res.err, want)
	}
	if len(res.rows) != 1 {
		t.Errorf("%d packets before the bad block, want 1", len(res.rows))
	}
}

// A file that is not a capture: refused at Configure with the offset.
func TestNotACapture(t *testing.T) {
	path := writeFile(t, "notes.pcap", []byte("these are my notes, not packets\n"))
	p := &pcapCapture{}
	js, _ := json.Marshal(map[string]any{"files": []string{path}})
	err := p.Configure(context.Background(), sdk.Config{JSON: js})
	want := "capture-pcap: " + path + ": offset 0: file header: not a pcap or pcapng file: magic number 73656874"
	if err == nil || err.Error() != want {
		t.Fatalf("error %v\nwant  %s", err, want)
	}
	short := writeFile(t, "short.pcap", []byte{0xd4, 0xc3, 0xb2, 0xa1, 2, 0})
	js, _ = json.Marshal(map[string]any{"files": []string{short}})
	if err := p.Configure(context.Background(), sdk.Config{JSON: js}); err == nil || !strings.Contains(err.Error(), short+": offset 0: file header: not a pcap or pcapng file: 6 bytes") {
		t.Fatalf("6-byte file: %v", err)
	}
}

// A gzip stream cut in the middle: what decompressed is delivered, then a
// warning, as for a cut pcap.
func TestTruncatedGzip(t *testing.T) {
	raw, _ := os.ReadFile(td("nmap-vsn.pcap"))
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(raw)
	zw.Close()
	path := writeFile(t, "cut.pcap.gz", buf.Bytes()[:buf.Len()/2])
	logw := &testLogWriter{t: t}
	p := &pcapCapture{log: slog.New(slog.NewTextHandler(logw, nil))}
	res := runWith(t, p, map[string]any{"files": []string{path}}, 0)
	if res.err != nil {
		t.Fatal(res.err)
	}
	_, full := runCapture(t, map[string]any{"files": []string{td("nmap-vsn.pcap")}}, 0, sdk.Runtime{})
	if len(res.rows) == 0 || len(res.rows) >= len(full.rows) {
		t.Fatalf("%d packets from half a gzip stream (whole: %d)", len(res.rows), len(full.rows))
	}
	for i := range res.rows {
		if !samePacket(res.rows[i].p, full.rows[i].p) {
			t.Fatalf("packet %d differs", i+1)
		}
	}
	if !strings.Contains(logw.b.String(), "offsets are in the uncompressed data") || !strings.Contains(logw.b.String(), "file ends inside a record") {
		t.Errorf("warning: %s", logw.b.String())
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// runWith is runCapture with a given plugin (to read its log and stats).
func runWith(t *testing.T, p *pcapCapture, cfg map[string]any, from uint64) result {
	t.Helper()
	js, _ := json.Marshal(cfg)
	if err := p.Configure(context.Background(), sdk.Config{JSON: js}); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	var res result
	w := sdk.NewPacketWriter(sdk.Runtime{}, from, func(b *sdk.PacketBatch) error {
		for i := 0; i < b.Len(); i++ {
			var pk sdk.Packet
			b.Packet(i, &pk)
			res.rows = append(res.rows, row{idx: b.FirstIndex + uint64(i), p: pk})
		}
		res.counters = b.Counters
		return nil
	})
	res.err = p.Capture(context.Background(), from, w)
	if err := w.Flush(); err != nil && res.err == nil {
		res.err = err
	}
	return res
}
