-- sink-postgres schema version 1: raw packets, aggregated features and
-- detected alerts, each range-partitioned by time. Partitions are created by
-- the plugin as data arrives (and ahead of time), and dropped whole by its
-- retention setting. Text columns that queries order by use the "C"
-- collation (bytewise, as the store contract orders them).

CREATE TABLE raw_packets (
    time       timestamptz NOT NULL,          -- capture time (microseconds)
    sensor     text COLLATE "C" NOT NULL,
    src        inet,                          -- NULL for frames without an IP layer
    dst        inet,
    src_port   integer NOT NULL,              -- TCP/UDP port; ICMP type
    dst_port   integer NOT NULL,              -- TCP/UDP port; ICMP code
    protocol   smallint NOT NULL,             -- IP protocol number
    length     integer NOT NULL,              -- length on the wire
    tcp_flags  smallint NOT NULL,
    flags      smallint NOT NULL,             -- sdk.PacketFlags (IPv6, DNS query/response, fragment, non-IP)
    frame      bytea                          -- the frame, cut to the sink's snaplen; NULL when not kept
) PARTITION BY RANGE (time);
CREATE INDEX raw_packets_time_brin ON raw_packets USING brin (time);

-- raw_packet_batches makes packet writes idempotent: one row per stored
-- batch, inserted in the same transaction as the batch's COPY, keyed by a
-- digest of the batch's packets. A re-sent batch finds its key and is skipped.
CREATE TABLE raw_packet_batches (
    sensor      text COLLATE "C" NOT NULL,
    batch_key   bytea NOT NULL,
    first_time  timestamptz NOT NULL,
    packets     integer NOT NULL,
    stored_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sensor, batch_key)
);
CREATE INDEX raw_packet_batches_first_time ON raw_packet_batches (first_time);

CREATE TABLE aggregated_features (
    sensor        text COLLATE "C" NOT NULL,
    window_size   integer NOT NULL,           -- seconds: 5, 30, 180
    src_ip        inet NOT NULL,
    window_start  timestamptz NOT NULL,
    window_end    timestamptz NOT NULL,       -- before start + size when the window was flushed early
    flags         integer NOT NULL DEFAULT 0, -- sdk.WindowFlags
    partial       boolean GENERATED ALWAYS AS ((flags & 1) <> 0) STORED,
    estimated     boolean GENERATED ALWAYS AS ((flags & 2) <> 0) STORED,
    -- One column per feature of feature schema version 1; NULL = missing.
    packets_total                double precision,
    bytes_total                  double precision,
    packet_rate_pps              double precision,
    bandwidth_bps                double precision,
    packet_size_mean_bytes       double precision,
    packet_size_std_bytes        double precision,
    packet_size_min_bytes        double precision,
    packet_size_max_bytes        double precision,
    iat_mean_ms                  double precision,
    iat_std_ms                   double precision,
    tcp_handshake_latency_ms     double precision,
    tcp_handshakes_total         double precision,
    tcp_packets_total            double precision,
    udp_packets_total            double precision,
    icmp_packets_total           double precision,
    other_packets_total          double precision,
    tcp_bytes_total              double precision,
    udp_bytes_total              double precision,
    icmp_bytes_total             double precision,
    other_bytes_total            double precision,
    syn_total                    double precision,
    synack_total                 double precision,
    fin_total                    double precision,
    rst_total                    double precision,
    psh_total                    double precision,
    ack_total                    double precision,
    distinct_dst_ips_total       double precision,
    distinct_dst_ports_total     double precision,
    distinct_src_ports_total     double precision,
    dns_queries_total            double precision,
    in_packets_total             double precision,
    in_bytes_total               double precision,
    in_rst_total                 double precision,
    in_icmp_unreachable_total    double precision,
    extra         jsonb,                      -- features this schema has no column for: {"name": value}
    CONSTRAINT aggregated_features_key UNIQUE (window_size, window_start, src_ip, sensor)
) PARTITION BY RANGE (window_start);
CREATE INDEX idx_agg_window_src_start ON aggregated_features (window_size, src_ip, window_start);

CREATE TABLE detected_alerts (
    id               text COLLATE "C" NOT NULL,
    time             timestamptz NOT NULL,    -- when the core received the alert
    sensor           text COLLATE "C" NOT NULL,
    detector         text NOT NULL,
    src              inet,
    window_size      integer NOT NULL,        -- seconds
    window_start     timestamptz NOT NULL,
    window_end       timestamptz NOT NULL,
    label            text COLLATE "C" NOT NULL,
    score            double precision NOT NULL,
    severity         text COLLATE "C" NOT NULL,
    runner_up        text,
    runner_up_score  double precision NOT NULL DEFAULT 0,
    top_features     jsonb,                   -- [{"name":..., "value":..., "weight":...}]; NaN/Inf as strings
    details          jsonb,
    PRIMARY KEY (time, id)
) PARTITION BY RANGE (time);
CREATE INDEX detected_alerts_src_time ON detected_alerts (src, time, id);
CREATE INDEX detected_alerts_label_time ON detected_alerts (label, time, id);
CREATE INDEX detected_alerts_severity_time ON detected_alerts (severity, time, id);
CREATE INDEX detected_alerts_window_end ON detected_alerts (window_end);

COMMENT ON TABLE raw_packets IS 'NetGuardian: every packet (when the sink has raw_packets = true)';
COMMENT ON TABLE aggregated_features IS 'NetGuardian: per-source window features (5s, 30s, 180s)';
COMMENT ON TABLE detected_alerts IS 'NetGuardian: detector alerts, one per (detector, source, window)';
