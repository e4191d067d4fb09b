#!/usr/bin/env python3
"""Writes NAME.golden.tsv for each capture given: what tshark says about every
packet, in the shape of an sdk.Packet. Run from this directory:

    python3 golden.py dns53.pcap get.pcap ...

Expected values for capture_test.go come from here (tshark), not from the
plugin's own decoder.
"""
import subprocess, sys

FIELDS = ["frame.len", "frame.time_epoch", "frame.protocols", "ip.src", "ip.dst",
          "ipv6.src", "ipv6.dst", "ip.proto", "ip.frag_offset", "ipv6.nxt",
          "ipv6.fraghdr.nxt", "ipv6.fraghdr.offset", "tcp.srcport", "tcp.dstport",
          "tcp.flags", "udp.srcport", "udp.dstport", "icmp.type", "icmp.code",
          "icmpv6.type", "icmpv6.code", "dns.flags.response"]
TRANSPORT = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58}

def rows(path):
    cmd = ["tshark", "-r", path, "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE",
           "-o", "tcp.desegment_tcp_streams:FALSE", "-T", "fields", "-E", "occurrence=f"]
    for f in FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        v = dict(zip(FIELDS, line.split("\t")))
        toks = v["frame.protocols"].split(":")
        ts = v["frame.time_epoch"]
        sec, frac = ts.split(".")
        ts_ns = int(sec) * 10**9 + int(frac.ljust(9, "0")[:9])
        net = next((i for i, t in enumerate(toks) if t in ("ip", "ipv6")), None)
        src = dst = "-"
        proto = sport = dport = tcpflags = 0
        flags = []
        if net is None:
            flags.append("nonip")
        else:
            rest = [t for t in toks[net + 1:] if not t.startswith("ipv6.")]
            nxt = rest[0] if rest else ""
            if toks[net] == "ip":
                src, dst = v["ip.src"], v["ip.dst"]
                proto = int(v["ip.proto"])
                frag = int(v["ip.frag_offset"] or 0) != 0
            else:
                flags.append("ipv6")
                src, dst = v["ipv6.src"], v["ipv6.dst"]
                proto = TRANSPORT.get(nxt) or int(v["ipv6.fraghdr.nxt"] or v["ipv6.nxt"])
                frag = int(v["ipv6.fraghdr.offset"] or 0) != 0
            if frag:
                flags.append("frag")
            elif nxt == "tcp":
                sport, dport = int(v["tcp.srcport"]), int(v["tcp.dstport"])
                tcpflags = int(v["tcp.flags"], 16) & 0xff
            elif nxt == "udp":
                sport, dport = int(v["udp.srcport"]), int(v["udp.dstport"])
            elif nxt == "icmp":
                sport, dport = int(v["icmp.type"]), int(v["icmp.code"])
            elif nxt == "icmpv6":
                sport, dport = int(v["icmpv6.type"]), int(v["icmpv6.code"])
            if not frag and "dns" in toks and 53 in (sport, dport) and v["dns.flags.response"] != "":
                flags.append("dnsr" if v["dns.flags.response"] in ("1", "True") else "dnsq")
        yield [ts_ns, v["frame.len"], src, dst, proto, sport, dport, tcpflags, ",".join(flags) or "-"]

for path in sys.argv[1:]:
    with open(path + ".golden.tsv", "w") as out:
        out.write("# ts_ns\twire_len\tsrc\tdst\tproto\tsport\tdport\ttcpflags\tflags  (tshark, see golden.py)\n")
        for r in rows(path):
            out.write("\t".join(map(str, r)) + "\n")
