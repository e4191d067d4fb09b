//go:build !unix

package sdk

// exitWithParent does nothing where a dead parent does not show in
// os.Getppid (Windows keeps reporting the PID the process was started
// by): there a plugin outlives a core that was killed.
func exitWithParent() {}
