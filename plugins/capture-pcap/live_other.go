//go:build !linux

package main

import (
	"context"
	"fmt"

	"github.com/netguardian/netguardian/sdk"
)

func (p *pcapCapture) configureLive() error {
	return fmt.Errorf("%s: live capture (interface %q) is only supported on Linux; replay files instead", pluginName, p.cfg.Interface)
}

func (p *pcapCapture) captureLive(context.Context, *sdk.PacketWriter) error {
	return fmt.Errorf("%s: live capture is only supported on Linux", pluginName)
}
