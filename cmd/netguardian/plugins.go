package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/netguardian/netguardian/core/config"
	"github.com/netguardian/netguardian/core/host"
	"github.com/netguardian/netguardian/sdk"
)

func pluginsCommand() *ffcli.Command {
	fs := flag.NewFlagSet("plugins", flag.ContinueOnError)
	dir := fs.String("dir", "", "plugin directory (default: sensor.plugin_dir of -config, else bin/plugins)")
	path := fs.String("config", "", "config file whose plugin_dir to list")
	schemas := fs.Bool("schema", true, "print each plugin's config schema")
	return &ffcli.Command{
		Name:       "plugins",
		ShortUsage: "netguardian plugins [-dir DIR] | netguardian plugins hash PATH",
		ShortHelp:  "list the plugins found, with kind, versions, SHA-256 and config schema",
		FlagSet:    fs,
		Subcommands: []*ffcli.Command{{
			Name:       "hash",
			ShortUsage: "netguardian plugins hash PATH",
			ShortHelp:  "print the sha256 line to pin a plugin binary in netguardian.hcl",
			Exec: func(_ context.Context, args []string) error {
				if len(args) != 1 {
					fmt.Fprintln(os.Stderr, "usage: netguardian plugins hash PATH")
					return errUsage
				}
				sum, err := host.Hash(args[0])
				if err != nil {
					return err
				}
				fmt.Printf("sha256 = %q\n", sum)
				return nil
			},
		}},
		Exec: func(ctx context.Context, _ []string) error {
			d := *dir
			if d == "" {
				d = config.Default().Sensor.PluginDir
				if *path != "" {
					cfg, err := loadConfig(*path)
					if err != nil {
						return err
					}
					d = cfg.Sensor.PluginDir
				}
			}
			return listPlugins(ctx, os.Stdout, d, *schemas)
		},
	}
}

func listPlugins(ctx context.Context, w io.Writer, dir string, schemas bool) error {
	paths, err := host.Discover(dir)
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		return fmt.Errorf("no plugins in %s (run `make build`)", dir)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tVERSION\tPROTOCOL\tSHA256\tPATH")
	type described struct {
		info sdk.Info
		path string
	}
	var found []described
	for _, p := range paths {
		sum, _ := host.Hash(p)
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		conn, err := sdk.Launch(cctx, sdk.LaunchOptions{Path: p, Env: pluginEnv(), Logger: quiet})
		if err != nil {
			cancel()
			fmt.Fprintf(tw, "?\t?\t?\t?\t%s\t%s (%v)\n", sum, p, err)
			continue
		}
		info, err := conn.Describe(cctx)
		proto := conn.ProtocolVersion()
		conn.Kill()
		cancel()
		if err != nil {
			fmt.Fprintf(tw, "?\t?\t?\t%d\t%s\t%s (%v)\n", proto, sum, p, err)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", info.Name, info.Kind, info.Version, proto, sum, p)
		found = append(found, described{info, p})
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !schemas {
		return nil
	}
	for _, d := range found {
		fmt.Fprintf(w, "\n%s (%s) config:\n", d.info.Name, d.info.Kind)
		for _, a := range d.info.Config {
			req := ""
			if a.Required {
				req = ", required"
			}
			def := ""
			if a.Default != nil {
				def = fmt.Sprintf(" (default %v)", a.Default)
			}
			fmt.Fprintf(w, "  %-20s %s%s%s  %s\n", a.Name, a.Type, req, def, a.Description)
		}
		if d.info.Kind == sdk.KindDetector {
			fmt.Fprintf(w, "  features: %s\n  windows: %v\n  labels: %s\n", strings.Join(d.info.Features, ", "), d.info.Windows, strings.Join(d.info.Labels, ", "))
		}
		if d.info.Kind == sdk.KindSink {
			fmt.Fprintf(w, "  records: %v  frames: %v  store: %v\n", d.info.Records, d.info.WantsFrames, d.info.ServesStore)
		}
	}
	return nil
}
