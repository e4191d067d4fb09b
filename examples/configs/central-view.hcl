# A central view: no capture, only the API and dashboard over a PostgreSQL
# database that remote sensors (each with its own sensor.name) write to.
#
#   NETGUARDIAN_API_TOKEN=$(cat /etc/netguardian/token) \
#   DATABASE_URL=postgres://netguardian@db/netguardian \
#     bin/netguardian run -config examples/configs/central-view.hcl

sensor {
  name       = "central"
  log_format = "json"
}

api {
  # Reachable from other hosts, so a bearer token is required.
  listen          = "0.0.0.0:5000"
  token           = env("NETGUARDIAN_API_TOKEN")
  allowed_origins = ["https://noc.example.com"]
}

sink "postgres" {
  plugin = "sink-postgres"

  config {
    url = env("DATABASE_URL")
  }
}
