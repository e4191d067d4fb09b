//go:build !linux

package sdk

import (
	"os/exec"

	"google.golang.org/grpc"
)

// Without SO_PEERCRED the plugin socket keeps go-plugin's mutual TLS.
const autoMTLS = true

func coreDialOptions(*exec.Cmd) []grpc.DialOption { return nil }

func pluginServerOptions() []grpc.ServerOption { return nil }
