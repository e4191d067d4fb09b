# Replay the sample capture and store packets, features and alerts in
# PostgreSQL; the API then answers history queries from the database.
#
#   DATABASE_URL=postgres://netguardian@localhost/netguardian \
#     bin/netguardian run -config examples/configs/postgres-sink.hcl

sensor {
  name = env("NETGUARDIAN_SENSOR", "lab-1")
}

capture "replay" {
  plugin = "capture-pcap"

  config {
    files = ["examples/pcaps/sample.pcap"]
    speed = 0 # as fast as possible
  }
}

sink "postgres" {
  plugin = "sink-postgres"

  config {
    # Never write a password here: keep it in the environment (or in
    # ~/.pgpass), e.g. postgres://user:pass@db:5432/netguardian?sslmode=require
    url = env("DATABASE_URL")
  }
}
