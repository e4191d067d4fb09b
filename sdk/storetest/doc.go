// Package storetest is the contract test suite for sdk.Store. Every store
// runs it unchanged: the core's in-memory store (core/store) and every sink
// that serves queries (sink-postgres, through its gRPC store client):
//
//	func TestStoreContract(t *testing.T) {
//		storetest.Run(t, storetest.Harness{
//			New: func(t *testing.T) (sdk.Store, storetest.Appender) {
//				s := store.NewMemory(store.Options{})
//				return s, s
//			},
//		})
//	}
//
// Harness.New is called once per top-level subtest and must return an empty
// store. The suite builds its own fixture (two sensors, IPv4 and IPv6
// sources, 5s/30s/180s windows over two hours, alerts of every severity and
// several labels) and computes every expected answer from the fixture
// itself, never from a store. Fixture times are whole milliseconds, so a
// store keeping microseconds (PostgreSQL) loses nothing.
//
// # The contract
//
// This is what the suite checks; where sdk's doc comments leave a choice,
// the choice made is written here.
//
// Sensors. Queries span every sensor a store holds. Every returned
// FeatureRow has Sensor set to the sensor that produced it (the batch's
// sensor at append time), and FeatureBatch.Sensor of a query result is
// empty. Alerts keep their Sensor.
//
// Features. QueryFeatures returns the rows of exactly q.Window whose Start
// lies in q.Range ([From, To), a zero end is open), of q.Src when it is
// valid, ordered by (Start, Src, Sensor): Src as netip.Addr.Compare orders
// addresses (IPv4 before IPv6), Sensor bytewise. Limit N keeps the last N
// rows of that order (the newest windows) and still returns them oldest
// first; Limit 0 means a store default of at least 1000 rows. The result is
// never nil and its Window is q.Window; a window size the store never saw
// gives no rows. Names holds every feature of the appended batches (a store
// whose batches all carried sdk.Features in canonical order returns exactly
// sdk.Features); every row has one value per name, and a feature the row's
// batch lacked reads NaN. Values round-trip bit for bit and NaN (a missing
// feature) stays NaN. Src, Start, End (compared with time.Time.Equal) and
// Flags round-trip; an IPv4 source stays IPv4, never IPv4-mapped IPv6.
// Changing a batch after appending it does not change what is stored.
//
// Protocols and top sources. Both count 5s rows only, since 30s and 180s
// rows aggregate the same packets and would count each packet three times,
// and only rows whose Start lies in the range, summed over every sensor.
// QueryProtocols returns exactly four entries, zeros included, in the order
// tcp, udp, icmp, other, summing the features tcp_packets_total and
// tcp_bytes_total, udp_..., icmp_..., other_.... QueryTopSources sums
// packets_total and bytes_total per source and ranks by q.By ("bytes", also
// when empty, or "packets"), largest first, ties by address ascending
// (netip.Addr.Compare); both totals are filled whatever q.By. Limit 0 means
// a store default of at least 10. A NaN count counts as 0.
//
// Alerts. QueryAlerts returns newest first: Time descending, then ID
// descending (bytewise; IDs are unique, so the order is total). Severity,
// Label and Src select equal values; Range selects alerts whose window End
// lies in it ([From, To)). Limit N returns min(N, matching) alerts for N up
// to 1000; Limit 0 means a store default of at least 1. NextCursor is
// non-empty exactly when more matching alerts follow the page. A cursor is
// opaque and continues strictly after the page's last alert in the order
// above (keyset pagination on (Time, ID)), so alerts appended between pages
// with a newer Time never shift later pages: following cursors visits every
// alert that matched when the first page was read exactly once. A cursor
// the store did not issue is an error wrapping sdk.ErrBadCursor. Every
// field round-trips except Row (the detector's index into its batch, which
// the core has already resolved into Src and the window): floats bit for
// bit, NaN in TopFeatures included; Details as a JSON value (a store may
// reformat it, as jsonb does), where nil, empty and `null` are alike.
//
// Empty store. Every query on an empty store succeeds with no rows, no
// alerts, no sources, and four zero protocol counts.
//
// Idempotency. A sink may receive a batch again after a crash, so appending
// a feature row with the same (sensor, window, src, start) or an alert with
// the same ID again stores it once.
//
// Invalid input is an error, never a panic: q.Window <= 0, a negative
// Limit, q.By other than "", "bytes" and "packets", a Severity that
// sdk.ParseSeverity rejects, and a bad cursor.
package storetest
