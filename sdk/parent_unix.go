//go:build unix

package sdk

import (
	"fmt"
	"os"
	"time"
)

// parentPoll is how often a plugin checks that the core still runs.
const parentPoll = 500 * time.Millisecond

// exitWithParent ends the plugin once the process that started it (the
// core) is gone. A core that dies without stopping its plugins (kill -9,
// a crash) would otherwise leave them running for good: a live capture
// holding its interface, a sink its database connections. When its
// parent dies a process is handed to init (or a subreaper), so its
// parent PID changes; that is checked every parentPoll. Whatever the
// plugin had not acknowledged is still in the core's spool, so exiting
// in the middle of a call loses nothing.
func exitWithParent() {
	ppid := os.Getppid()
	go func() {
		for {
			time.Sleep(parentPoll)
			if os.Getppid() != ppid {
				fmt.Fprintf(os.Stderr, "netguardian plugin: the core (pid %d) is gone; exiting\n", ppid)
				os.Exit(1)
			}
		}
	}()
}
