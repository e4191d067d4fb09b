package config

import (
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// SummaryNothingToObserve is the summary of Validate's warning about a
// config without captures or sinks; `netguardian analyze`, which brings
// its own capture, leaves it out.
const SummaryNothingToObserve = "Nothing to observe"

// Validate runs the checks that involve more than one attribute and need
// no plugin. Parse does not call it, so that `netguardian validate` and
// `netguardian run` report it once each; both should. The checks:
//
//   - error: api.listen is not a loopback address and api.token is empty
//     (a wildcard or unresolved host name counts as non-loopback);
//   - warning: no capture and no sink block is enabled, so the sensor
//     would serve an API with nothing behind it.
func Validate(c *Config) hcl.Diagnostics {
	if c == nil {
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "No configuration", Detail: "Validate was given no configuration."}}
	}
	var diags hcl.Diagnostics
	if host, _, err := net.SplitHostPort(c.API.Listen); err == nil && !isLoopback(host) && c.API.Token == "" {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "api.token is required when listening on a non-loopback address",
			Detail: fmt.Sprintf("api.listen = %q accepts connections from other hosts, so clients must present a bearer token. "+
				"Set api.token (for example token = env(\"NETGUARDIAN_API_TOKEN\")), or listen on 127.0.0.1.", c.API.Listen),
			Subject: c.AttrRange("api.listen").Ptr(),
		})
	}
	if !anyEnabled(c.Captures) && !anyEnabled(c.Sinks) {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagWarning,
			Summary:  SummaryNothingToObserve,
			Detail:   "No capture or sink block is enabled: the API will serve an empty in-memory store. Add a capture block, or a sink that answers queries.",
			Subject:  c.AttrRange("").Ptr(),
		})
	}
	return diags
}

func anyEnabled(blocks []PluginBlock) bool {
	for _, b := range blocks {
		if b.Enabled {
			return true
		}
	}
	return false
}

// isLoopback reports whether host (from host:port) only accepts local
// connections. Host names other than localhost are not resolved: what they
// resolve to can change, so they count as non-loopback.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	if i := strings.IndexByte(host, '%'); i >= 0 { // IPv6 zone, as in fe80::1%eth0
		host = host[:i]
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// maxPrinted bounds how many diagnostics WriteDiagnostics prints: after a
// syntax error the rest are mostly consequences, and HCL's writer rescans
// the file for each snippet, so thousands of them take seconds.
const maxPrinted = 50

// WriteDiagnostics prints diags as text, with a source snippet for each
// one whose file is in files (Config.Files); color adds VT100 colors for
// terminals. Lines are not wrapped, so the output also suits logs. Past
// the first 50, it only says how many more there are.
func WriteDiagnostics(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics, color bool) error {
	shown := diags
	if len(shown) > maxPrinted {
		shown = shown[:maxPrinted]
	}
	tw := hcl.NewDiagnosticTextWriter(w, files, 0, color)
	for _, d := range shown {
		// A compiler-style first line (file:line:col) that editors and grep
		// understand, then HCL's explanation with the source snippet.
		if d.Subject != nil {
			sev := "error"
			if d.Severity == hcl.DiagWarning {
				sev = "warning"
			}
			if _, err := fmt.Fprintf(w, "%s:%d:%d: %s: %s\n", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column, sev, d.Summary); err != nil {
				return fmt.Errorf("write diagnostics: %w", err)
			}
		}
		if err := tw.WriteDiagnostic(d); err != nil {
			return fmt.Errorf("write diagnostics: %w", err)
		}
	}
	if more := len(diags) - len(shown); more > 0 {
		if _, err := fmt.Fprintf(w, "... and %d more diagnostics, not shown; fix the ones above first.\n", more); err != nil {
			return fmt.Errorf("write diagnostics: %w", err)
		}
	}
	return nil
}
