// Package plugintest is the conformance harness for NetGuardian plugins.
// A plugin author runs it from the plugin's own `go test`:
//
//	func TestConformance(t *testing.T) {
//		bin := plugintest.Build(t, ".") // go build of the plugin's main package
//		plugintest.RunDetector(t, bin, plugintest.DetectorSuite{
//			GoodConfig: map[string]any{"max_queries": 100},
//			BadConfigs: []map[string]any{{"max_queries": -1}},
//		})
//	}
//
// The harness starts the binary through the same code netguardian uses
// (package core/host): the go-plugin handshake and protocol version
// negotiation, Describe, the kind and feature-schema checks, Configure
// with the config decoded against the plugin's schema exactly as the core
// decodes a `config { }` block, and Detect, whose answers are validated by
// host.CheckAlerts. A plugin that passes here behaves in netguardian as it
// did in the test.
//
// RunDetector then checks what the core does not check at start but a
// detector must get right: its Describe answer (schema types, known
// feature names, window sizes, labels), that bad configs are refused with
// a message, and that fixture batches (empty, one row, 10,000 rows, NaN
// values, inbound-only rows, IPv6 and unusual sources, extreme values) are
// answered within a deadline, without a crash and with valid alerts.
//
// Golden compares a detector's alerts with a file under testdata/ and
// rewrites it when the test runs with -update (`go test -run TestX -args
// -update`) or NG_UPDATE_GOLDEN=1, the way Terraform's acceptance tests
// and Nomad's driver harness keep expected outputs next to the code. Use
// the variable with `go test ./...`: packages that do not import plugintest
// do not define -update. plugintest defines the -update flag itself; a
// test package that imports it must not define its own.
//
// Every function takes a TB, the part of testing.TB the harness uses, so
// that a harness can itself be tested with a recorder.
package plugintest
