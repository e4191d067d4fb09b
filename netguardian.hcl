# netguardian.hcl: the default NetGuardian configuration.
#
# It runs with no external service: it replays the bundled sample capture,
# keeps recent history in memory and serves the API and dashboard on
# http://127.0.0.1:5000/. Start it with `make run` or
# `bin/netguardian run -config netguardian.hcl`; check edits with
# `bin/netguardian validate -config netguardian.hcl`, and apply them to a
# running sensor with SIGHUP (`kill -HUP <pid>`): only the plugins whose
# blocks changed restart (docs/configuration.md, "Reloading").
#
# Syntax: HCL (https://github.com/hashicorp/hcl). Durations are strings such
# as "500ms", "2s", "5m", "1h30m". Two functions are available anywhere:
#   env("NAME", "default")  an environment variable (the default is optional;
#                           without one, an unset variable is an error)
#   file("path")            a file's contents, relative to this file's directory
# Relative paths elsewhere (plugin_dir, files in plugin config blocks) are
# relative to the directory netguardian is started from.
#
# Every setting below is optional; the values shown are the defaults unless
# noted. docs/configuration.md describes each one.

sensor {
  # Names this sensor in stored records, so several sensors can share a
  # database. Without this line it is the host name.
  name = env("NETGUARDIAN_SENSOR", "netguardian")

  # Where plugins referred to by name (plugin = "capture-pcap") are found.
  plugin_dir = "bin/plugins"

  log_level  = "info" # debug | info | warn | error
  log_format = "text" # text | json (one JSON object per line)

  # Where data waiting for a slow sink may be kept.
  spool_dir = "var/spool"
}

api {
  # REST API, dashboard, WebSocket and /metrics. Listening on anything but a
  # loopback address requires a token: clients send
  # "Authorization: Bearer <token>".
  listen = "127.0.0.1:5000"
  token  = env("NETGUARDIAN_API_TOKEN", "")

  # Web pages from these origins may open the dashboard WebSocket
  # (the API's own origin always may), e.g. ["https://noc.example.com"].
  allowed_origins = []

  snapshot_interval = "2s" # dashboard update period
  active_for        = "5m" # how long an alert stays "active" after its window
}

aggregation {
  # Windows use packet time. A window closes once packets `lateness` newer
  # than its end have been seen, or after `idle_timeout` without packets
  # (live capture only).
  lateness     = "2s"
  idle_timeout = "10s"

  # Memory bounds: sources with open windows, and distinct destinations or
  # ports counted exactly per window before switching to an estimate.
  max_sources          = 200000
  distinct_exact_limit = 1024
}

pipeline {
  batch_size     = 8192    # packets per batch sent to the core
  flush_interval = "100ms" # longest wait before a partial batch is sent
  queue_depth    = 64      # batches buffered between stages

  # Under overload, raw packets bound for sinks may be dropped (and counted
  # in /metrics) rather than slowing capture down. Features and alerts are
  # never dropped.
  drop_raw_packets = true
}

# ---- Plugins ---------------------------------------------------------------
# capture, detector and sink blocks each start a plugin. The label ("replay")
# names the block in logs, metrics and the API, and must be unique per kind.
#   plugin  = a plugin in plugin_dir, or a path containing '/'
#   sha256  = optional digest of the plugin binary; any other binary is refused
#   enabled = false keeps the block but does not start it
#   env     = { NAME = "value" } the plugin's environment: it gets PATH and
#             these, never netguardian's own (values are never logged)
#   config { } is decoded against the plugin's own schema: a misspelt or
#   mistyped setting is reported with its line before anything starts.

# Replays the bundled sample capture, looping, at its recorded pace.
capture "replay" {
  plugin = "capture-pcap"

  config {
    files = ["examples/pcaps/sample.pcap"] # pcap or pcapng files, in order
    speed = 1.0                            # 1 = recorded pace, 0 = as fast as possible
    loop  = true                           # start again at the end
  }
}

# Live capture from a network interface. Needs the CAP_NET_RAW capability
# (sudo setcap cap_net_raw,cap_net_admin=eip bin/plugins/capture-pcap) or
# root. To use it, remove the leading '#'s, and disable the replay above
# unless you want both.
#
# capture "live" {
#   plugin = "capture-pcap"
#
#   config {
#     interface = "eth0"
#     bpf       = "not port 22" # a tcpdump filter: here, skip our own SSH session
#     snaplen   = 262144        # bytes kept per packet
#     promisc   = false
#   }
# }

# A threshold detector for port scans and host sweeps, written only against
# the SDK as a third party would (examples/detector-portscan).
detector "portscan" {
  plugin = "detector-portscan"

  config {
    min_distinct_dst_ports = 100 # ports one source probes in a window
    min_distinct_dst_ips   = 50  # hosts one source probes in a window
  }
}

# Scores 30s and 180s windows with the bundled XGBoost model
# (plugins/detector-xgboost; the model and its evaluation report are in
# its model/ folder, and `make model` retrains it).
detector "xgboost" {
  plugin = "detector-xgboost"
}

# No sink: recent history is kept in memory, which is what the API serves.
# examples/configs/postgres-sink.hcl stores everything in PostgreSQL.
