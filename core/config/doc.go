// Package config reads netguardian.hcl, the sensor's configuration file.
//
// The file is HCL2 native syntax. Four blocks configure the core itself and
// may each appear at most once; every attribute in them is optional and has
// a default, so an empty file is a valid configuration:
//
//	sensor {
//	  name          = env("NETGUARDIAN_SENSOR", "sensor-1") # default: the host name
//	  plugin_dir    = "bin/plugins"  # relative to the working directory
//	  log_level     = "info"         # debug | info | warn | error
//	  log_format    = "text"         # text | json
//	  spool_dir     = "var/spool"
//	  spool_max_mib = 1024           # per sink
//	}
//	api {
//	  listen            = "127.0.0.1:5000"
//	  token             = env("NETGUARDIAN_API_TOKEN", "")
//	  allowed_origins   = ["https://noc.example.com"]
//	  snapshot_interval = "2s"
//	  active_for        = "5m"
//	}
//	aggregation {
//	  lateness             = "2s"
//	  idle_timeout         = "10s"
//	  max_sources          = 200000
//	  distinct_exact_limit = 1024
//	}
//	pipeline {
//	  batch_size       = 8192
//	  flush_interval   = "100ms"
//	  queue_depth      = 64
//	  drop_raw_packets = true
//	}
//
// Plugins are declared with capture, detector and sink blocks, any number of
// each, labelled with a name unique among blocks of the same kind:
//
//	capture "replay" {
//	  plugin  = "capture-pcap" # a name in plugin_dir, or a path containing '/'
//	  sha256  = "..."          # optional: refuse a binary with another digest
//	  enabled = true           # optional
//	  env = {                  # optional: the plugin's environment besides PATH
//	    TZ = "UTC"
//	  }
//	  config {                 # decoded against the plugin's own schema
//	    files = ["examples/pcaps/sample.pcap"]
//	  }
//	}
//
// Durations are strings in time.ParseDuration syntax ("500ms", "2s", "1h30m").
// A null value (name = null) means "not set": the default applies.
//
// Two functions may be used in any expression:
//
//   - env(name) and env(name, default) read an environment variable. A
//     variable that is set, even to the empty string, wins over the default;
//     an unset variable without a default is an error.
//   - file(path) returns a file's contents (at most 1 MiB of UTF-8 text,
//     trailing newline kept). A relative path is relative to the directory
//     of the config file, unlike plugin_dir and paths inside plugin config
//     blocks, which are relative to the working directory.
//
// Parse and Load decode the core's blocks and check each attribute on its
// own; Validate adds the checks that involve several attributes;
// DecodePluginConfig decodes a plugin's config block once the plugin has
// described its schema. All three report hcl.Diagnostics with file:line:col,
// which WriteDiagnostics prints with a source snippet.
package config
