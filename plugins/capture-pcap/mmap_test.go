//go:build unix

package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netguardian/netguardian/internal/pcapgen"
	"github.com/netguardian/netguardian/plugins/capture-pcap/internal/pcapfile"
)

// A capture file is read in place (mapped), and one cut short while it is
// read gives an error naming the file instead of killing the plugin with
// SIGBUS.
func TestMappedFileThatShrinks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shrinks.pcap")
	if err := pcapgen.Write(path, pcapgen.Options{Packets: 2000, Seed: 4}); err != nil {
		t.Fatal(err)
	}
	readAll := func(c *captureFile) (int, error) {
		n := 0
		err := c.guard(func() error {
			var rec pcapfile.Record
			for {
				if err := c.r.Next(&rec); err != nil {
					return err
				}
				n++
			}
		})
		return n, err
	}

	c, err := openCapture(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.unmap == nil {
		t.Fatal("a regular capture file was not mapped")
	}
	n, err := readAll(c)
	c.Close()
	if !errors.Is(err, io.EOF) || n != 2000 {
		t.Fatalf("whole file: %d records, %v; want 2000 and EOF", n, err)
	}

	c, err = openCapture(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := os.Truncate(path, 4096); err != nil { // pages past the first are gone
		t.Fatal(err)
	}
	n, err = readAll(c)
	if err == nil || !strings.Contains(err.Error(), "shrank while it was being read") || !strings.Contains(err.Error(), path) {
		t.Fatalf("file cut to 4096 bytes while mapped: %d records, %v", n, err)
	}
	t.Logf("read %d records, then: %v", n, err)
}
