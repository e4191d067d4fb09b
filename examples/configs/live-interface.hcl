# Live capture from one interface, history in memory.
#
#   sudo setcap cap_net_raw,cap_net_admin=eip bin/plugins/capture-pcap
#   NETGUARDIAN_INTERFACE=eth0 bin/netguardian run -config examples/configs/live-interface.hcl
#
# Live capture needs the CAP_NET_RAW capability (or root) on the plugin
# binary. cap_net_admin is granted too, as Wireshark does for dumpcap,
# because some systems need it to switch an interface to promiscuous mode.

sensor {
  name      = env("NETGUARDIAN_SENSOR", "edge-1")
  log_level = "info"
}

aggregation {
  # Live traffic can go quiet: close windows after 10s without packets.
  idle_timeout = "10s"
}

capture "live" {
  plugin = "capture-pcap"

  config {
    interface = env("NETGUARDIAN_INTERFACE", "eth0")
    bpf       = "not port 22" # tcpdump filter syntax
    snaplen   = 262144
    promisc   = true
  }
}
