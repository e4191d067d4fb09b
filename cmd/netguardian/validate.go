package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/peterbourgon/ff/v3/ffcli"
)

func validateCommand() *ffcli.Command {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	path := fs.String("config", "netguardian.hcl", "config file")
	return &ffcli.Command{
		Name:       "validate",
		ShortUsage: "netguardian validate [-config FILE]",
		ShortHelp:  "check a config file, including every plugin's config block",
		LongHelp: "Parses the config, starts each enabled plugin just long enough to ask for its\n" +
			"config schema, decodes its config block against it, and prints every problem\n" +
			"with file:line:col. Exits non-zero when there are errors.",
		FlagSet: fs,
		Exec: func(ctx context.Context, _ []string) error {
			cfg, err := loadConfig(*path)
			if err != nil {
				return err
			}
			quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
			ps, diags := startPlugins(ctx, cfg, quiet)
			ps.stop()
			if len(diags) > 0 {
				printDiags(cfg, diags)
			}
			if diags.HasErrors() {
				return errReported
			}
			fmt.Fprintf(os.Stdout, "%s: OK (%d capture, %d detector, %d sink plugins)\n", *path, len(ps.captures), len(ps.detectors), len(ps.sinks))
			return nil
		},
	}
}
