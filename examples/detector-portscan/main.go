// Command detector-portscan is an example third-party NetGuardian detector:
// threshold rules for port scans and host sweeps, written only against the
// public SDK (github.com/netguardian/netguardian/sdk). See README.md.
package main

import "github.com/netguardian/netguardian/sdk"

func main() { sdk.Serve(newDetector()) }
