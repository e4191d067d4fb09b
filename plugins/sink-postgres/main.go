// Command sink-postgres is NetGuardian's PostgreSQL sink: it stores raw
// packets (optionally), aggregated window features and alerts in
// range-partitioned tables with COPY, and answers the API's queries
// (sdk.Store) over everything in the database, whichever sensor wrote it.
// See README.md.
package main

import "github.com/netguardian/netguardian/sdk"

func main() {
	sdk.Serve(newSink())
}
