// Command capture-pcap is NetGuardian's capture plugin: it replays pcap and
// pcapng files (gzip-compressed too) and captures live from a Linux
// interface with AF_PACKET, without cgo. See README.md.
package main

import "github.com/netguardian/netguardian/sdk"

func main() { sdk.Serve(&pcapCapture{}) }
