// Command netguardian is the NetGuardian sensor: it reads netguardian.hcl,
// starts the capture, detector and sink plugins it names, and runs the
// pipeline between them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/debug"

	"github.com/peterbourgon/ff/v3/ffcli"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// errUsage marks errors already explained to the user; main exits 2.
var errUsage = errors.New("usage")

// errReported marks errors already printed (diagnostics); main exits 1.
var errReported = errors.New("reported")

// defaultGCPercent is the core's GOGC unless the environment sets one.
// The core's heap is mostly window records that live as long as their
// window; collecting at +50 % instead of Go's +100 % keeps the peak RSS of
// a sensor tracking 100,000 sources at 253–278 MB instead of 278–308 MB,
// for ~5 % more CPU (docs/design-decisions.md).
const defaultGCPercent = 50

// setGCDefault applies defaultGCPercent unless GOGC is set; restore puts
// back the previous setting (for tests that run the core in process).
func setGCDefault() (restore func()) {
	if os.Getenv("GOGC") != "" {
		return func() {}
	}
	old := debug.SetGCPercent(defaultGCPercent)
	return func() { debug.SetGCPercent(old) }
}

func main() {
	setGCDefault()
	root := &ffcli.Command{
		Name:       "netguardian",
		ShortUsage: "netguardian <command> [flags]",
		ShortHelp:  "network sensor: traffic windows, features and ML detection",
		FlagSet:    flag.NewFlagSet("netguardian", flag.ContinueOnError),
		Subcommands: []*ffcli.Command{
			runCommand(), analyzeCommand(), validateCommand(), pluginsCommand(), versionCommand(),
		},
		Exec: func(context.Context, []string) error { return flag.ErrHelp },
	}
	err := root.ParseAndRun(context.Background(), os.Args[1:])
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	case errors.Is(err, errUsage):
		os.Exit(2)
	case errors.Is(err, errReported):
		os.Exit(1)
	default:
		fmt.Fprintln(os.Stderr, "netguardian:", err)
		os.Exit(1)
	}
}

func versionCommand() *ffcli.Command {
	return &ffcli.Command{
		Name:       "version",
		ShortUsage: "netguardian version",
		ShortHelp:  "print the version, protocol and feature schema versions",
		Exec: func(context.Context, []string) error {
			fmt.Printf("netguardian %s (plugin protocol %d, feature schema %d, sdk %s)\n", version, sdkProtocol, sdkFeatureSchema, sdkVersion)
			return nil
		},
	}
}
