package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/netguardian/netguardian/sdk"
)

// ring_size and block_size: sizes with binary units, checked against each
// other and against snaplen before anything runs.
func TestRingConfig(t *testing.T) {
	file := td("get.pcap")
	configure := func(extra map[string]any) (*pcapCapture, error) {
		cfg := map[string]any{"files": []string{file}}
		for k, v := range extra {
			cfg[k] = v
		}
		js, _ := json.Marshal(cfg)
		p := &pcapCapture{}
		return p, p.Configure(context.Background(), sdk.Config{JSON: js})
	}
	for _, c := range []struct {
		cfg  map[string]any
		want string
	}{
		{map[string]any{"ring_size": "64MB"}, `ring_size: "64MB": want a positive size such as "64MiB" (units B, KiB, MiB, GiB)`},
		{map[string]any{"ring_size": "-1MiB"}, `ring_size: "-1MiB": want a positive size`},
		{map[string]any{"ring_size": ""}, `ring_size: "": want a positive size`},
		{map[string]any{"block_size": "1.5MiB"}, `block_size: "1.5MiB": want a positive size`},
		{map[string]any{"block_size": "3KiB", "snaplen": 1500}, `block_size "3KiB": want a power of two from`},
		{map[string]any{"block_size": "512MiB"}, `block_size "512MiB": want a power of two`},
		{map[string]any{"block_size": "256KiB"}, `block_size "256KiB" cannot hold a whole frame of snaplen 262144 (a block needs snaplen + 256 bytes): raise block_size or lower snaplen`},
		{map[string]any{"ring_size": "1536KiB"}, `ring_size "1536KiB": want a multiple of block_size (1MiB) of at least two blocks`},
		{map[string]any{"ring_size": "1MiB"}, `ring_size "1MiB": want a multiple of block_size (1MiB) of at least two blocks`},
		{map[string]any{"ring_size": "8GiB"}, `ring_size "8GiB": want at most 4GiB`},
	} {
		_, err := configure(c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Configure(%v) = %v, want an error containing %q", c.cfg, err, c.want)
		}
	}
	for _, c := range []struct {
		cfg          map[string]any
		ring, blocks int
	}{
		{nil, 64 << 20, 64},
		{map[string]any{"ring_size": "1GiB", "block_size": "4MiB"}, 1 << 30, 256},
		{map[string]any{"ring_size": "512KiB", "block_size": "4096B", "snaplen": 1500}, 512 << 10, 128},
		{map[string]any{"ring_size": "131072", "block_size": "65536", "snaplen": 1500}, 128 << 10, 2},
	} {
		p, err := configure(c.cfg)
		if err != nil {
			t.Errorf("Configure(%v): %v", c.cfg, err)
			continue
		}
		if p.cfg.ringBytes != c.ring || p.cfg.ringBytes/p.cfg.blockBytes != c.blocks {
			t.Errorf("Configure(%v): ring of %d bytes in blocks of %d, want %d bytes in %d blocks", c.cfg, p.cfg.ringBytes, p.cfg.blockBytes, c.ring, c.blocks)
		}
	}
	schema := (&pcapCapture{}).Describe().Config
	for name, def := range map[string]string{"ring_size": "64MiB", "block_size": "1MiB"} {
		if a, ok := schema.Lookup(name); !ok || a.Default != def {
			t.Errorf("schema attribute %q: %+v, want default %q", name, a, def)
		}
	}
}
