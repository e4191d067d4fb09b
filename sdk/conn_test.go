package sdk

import (
	"errors"
	"strings"
	"testing"
)

// go-plugin's handshake errors become messages that say what to do. The
// inputs are go-plugin's own wordings (v1.8 lowercases what older
// releases capitalized).
func TestExplainStartError(t *testing.T) {
	cases := []struct {
		in    string
		wants []string
	}{
		{"incompatible API version with plugin. Plugin version: 2, Client versions: [1]",
			[]string{"unsupported plugin protocol", "the plugin speaks protocol version 2, this core supports 1", "Plugin version: 2"}},
		{"Incompatible API version with plugin. Plugin version: 7, Client versions: [1]",
			[]string{"the plugin speaks protocol version 7, this core supports 1"}},
		{"incompatible API version with plugin.", []string{"the plugin speaks an unknown protocol version, this core supports 1"}},
		{"incompatible core API version with plugin. Plugin version: 2, Core version: 1",
			[]string{"incompatible go-plugin release", "Core version: 1"}},
		{"Unrecognized remote plugin message: hello\n", []string{"not a NetGuardian plugin"}},
		{"timeout while waiting for plugin to start", []string{"timeout while waiting for plugin to start"}},
	}
	for _, c := range cases {
		got := explainStartError(errors.New(c.in)).Error()
		for _, w := range c.wants {
			if !strings.Contains(got, w) {
				t.Errorf("explainStartError(%q) = %q, want it to contain %q", c.in, got, w)
			}
		}
	}
}
