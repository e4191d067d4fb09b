//go:build race

package api

// raceEnabled: the race detector slows goroutine-heavy code several
// times, so timing bounds are reported but not enforced.
const raceEnabled = true
