// Shapes of the API's JSON (see /api/openapi.json).

export type Severity = "low" | "medium" | "high" | "critical";

export interface FeatureValue {
  name: string;
  value: number | null;
  weight: number | null;
}

export interface Alert {
  id: string;
  sensor?: string;
  detector: string;
  src: string;
  window: string;
  start: string;
  end: string;
  time: string;
  label: string;
  score: number | null;
  severity: Severity;
  runner_up?: string;
  runner_up_score?: number | null;
  top_features: FeatureValue[];
  details?: unknown;
}

export interface AlertPage {
  alerts: Alert[];
  next_cursor?: string;
}

export interface Active {
  active_for: string;
  as_of: string | null;
  total: number;
  alerts: Alert[];
}

export interface PluginHealth {
  name: string;
  kind: string;
  plugin: string;
  version: string;
  state: string;
  restarts: number;
  failures: number;
}

export interface Snapshot {
  type: "snapshot";
  time: string;
  status: "ok" | "degraded";
  reasons: string[];
  packets: number;
  bytes: number;
  alerts: number;
  windows: Record<string, number>;
  packets_per_second: number;
  bits_per_second: number;
  plugins: PluginHealth[];
  queues: { packets: number; detectors: Record<string, number>; sinks: Record<string, number> };
  drops: { kernel: number; capture: number; aggregator: number; sink: number; total: number; recent: boolean };
  active: Active;
}

export interface AlertMessage {
  type: "alert";
  alert: Alert;
}

export interface ProtocolCount {
  protocol: string;
  packets: number;
  bytes: number;
}

export interface SourceTotal {
  src: string;
  packets: number;
  bytes: number;
}

export interface FeatureRow {
  src: string;
  start: string;
  end: string;
  flags: string[];
  features: Record<string, number | null>;
}

export interface Features {
  window: string;
  names: string[];
  rows: FeatureRow[];
}
