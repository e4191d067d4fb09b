package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/bpf"
)

// Filters in tcpdump syntax are compiled by the tcpdump program (libpcap's
// own compiler, so every expression tcpdump accepts works exactly as it does
// there), run as `tcpdump -ddd -r - EXPR` over a header-only pcap that
// carries the link type and snaplen. The pure-Go compilers on the Go module
// proxy (github.com/packetcap/go-pcap/filter) know only host/net/port/
// portrange and ip/ip6/tcp/udp: no icmp, vlan, byte-offset expressions like
// tcp[tcpflags], so they were not used.

// tcpdumpPaths are tried after $PATH, which often lacks /usr/sbin.
var tcpdumpPaths = []string{"/usr/sbin/tcpdump", "/usr/bin/tcpdump", "/usr/local/sbin/tcpdump"}

func findTcpdump() (string, error) {
	if p, err := exec.LookPath("tcpdump"); err == nil {
		return p, nil
	}
	for _, p := range tcpdumpPaths {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", errors.New("the bpf filter is compiled by tcpdump, which was not found in $PATH or /usr/sbin (install it: apt-get install tcpdump)")
}

// compileFilter compiles expr for frames of linkType cut to snaplen.
func compileFilter(expr string, linkType uint32, snaplen int) ([]bpf.RawInstruction, error) {
	tcpdump, err := findTcpdump()
	if err != nil {
		return nil, fmt.Errorf("bpf %q: %w", expr, err)
	}
	hdr := make([]byte, 24)
	binary.LittleEndian.PutUint32(hdr[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(hdr[4:], 2)
	binary.LittleEndian.PutUint16(hdr[6:], 4)
	binary.LittleEndian.PutUint32(hdr[16:], uint32(snaplen))
	binary.LittleEndian.PutUint32(hdr[20:], linkType)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, tcpdump, "-ddd", "-r", "-", "--", expr)
	cmd.Stdin = bytes.NewReader(hdr)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := tcpdumpMessage(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("bpf %q does not compile: %s", expr, msg)
	}
	prog, err := parseDDD(stdout.String())
	if err != nil {
		return nil, fmt.Errorf("bpf %q: reading tcpdump -ddd output: %w", expr, err)
	}
	return prog, nil
}

// tcpdumpMessage keeps tcpdump's error lines, without its "reading from
// file" chatter and "tcpdump: " prefixes.
func tcpdumpMessage(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "tcpdump:"))
		if l == "" || strings.HasPrefix(l, "reading from file") {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "; ")
}

// maxInstructions is the kernel's BPF_MAXINSNS.
const maxInstructions = 4096

// parseDDD parses `tcpdump -ddd` output: the instruction count, then one
// "code jt jf k" line per instruction, all decimal.
func parseDDD(s string) ([]bpf.RawInstruction, error) {
	rows := strings.Split(strings.TrimSpace(s), "\n")
	if len(rows) == 0 || rows[0] == "" {
		return nil, errors.New("empty output")
	}
	n, err := strconv.Atoi(strings.TrimSpace(rows[0]))
	if err != nil || n <= 0 || n > maxInstructions {
		return nil, fmt.Errorf("bad instruction count %q", rows[0])
	}
	if len(rows)-1 != n {
		return nil, fmt.Errorf("%d instructions announced, %d given", n, len(rows)-1)
	}
	prog := make([]bpf.RawInstruction, n)
	for i, row := range rows[1:] {
		f := strings.Fields(row)
		if len(f) != 4 {
			return nil, fmt.Errorf("instruction %d: %q is not \"code jt jf k\"", i, row)
		}
		var v [4]uint64
		for j, bits := range []int{16, 8, 8, 32} {
			if v[j], err = strconv.ParseUint(f[j], 10, bits); err != nil {
				return nil, fmt.Errorf("instruction %d: %w", i, err)
			}
		}
		prog[i] = bpf.RawInstruction{Op: uint16(v[0]), Jt: uint8(v[1]), Jf: uint8(v[2]), K: uint32(v[3])}
	}
	return prog, nil
}

// filterVM runs a compiled filter in user space (file replay).
func filterVM(prog []bpf.RawInstruction) (*bpf.VM, error) {
	insts := make([]bpf.Instruction, len(prog))
	for i, r := range prog {
		insts[i] = r.Disassemble()
	}
	return bpf.NewVM(insts)
}
