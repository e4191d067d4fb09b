package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netguardian/netguardian/sdk"
)

// State of a supervised plugin.
type State string

const (
	StateRunning    State = "running"
	StateRestarting State = "restarting"
	StateFailed     State = "failed" // gave up: too many crashes, or a restart failed
	StateStopped    State = "stopped"
)

// Spec says which plugin to run and how.
type Spec struct {
	// Name is the config block's label ("replay" in capture "replay").
	Name string
	Kind sdk.Kind
	// Path is the resolved binary; SHA256 is the pin from the config, if any.
	Path   string
	SHA256 string
	// Env is the plugin's environment; see sdk.LaunchOptions.
	Env []string
}

// Backoff bounds restarts: the delay doubles from Min to Max, and after
// MaxCrashes crashes within Window the plugin is marked failed (a circuit
// breaker, so a plugin that dies at once does not spin forever).
type Backoff struct {
	Min, Max   time.Duration
	MaxCrashes int
	Window     time.Duration
}

// DefaultBackoff is used when a Plugin's Backoff is zero.
var DefaultBackoff = Backoff{Min: 100 * time.Millisecond, Max: 10 * time.Second, MaxCrashes: 10, Window: time.Minute}

// ErrFailed is returned once a plugin's circuit breaker has opened.
var ErrFailed = errors.New("plugin failed")

// ErrStopped is returned by Restart once the plugin was stopped on purpose
// (shutdown, or a reload that replaced it): it is not restarted.
var ErrStopped = errors.New("plugin stopped")

// Plugin is one supervised plugin process. Its connection is replaced on
// restart; callers get the current one through Conn.
type Plugin struct {
	spec    Spec
	baseLog *slog.Logger // the sensor's, for the plugin's own lines
	log     *slog.Logger // baseLog with plugin=<block name>
	backoff Backoff

	mu      sync.Mutex
	conn    *sdk.Conn
	info    sdk.Info
	cfg     *sdk.Config // last Configure, re-sent after a restart
	state   State
	lastErr string
	crashes []time.Time
	// stats is the plugin's last answer to Stats (Watch asks), from the
	// running process only: a restart clears it.
	stats *sdk.Stats

	restarts atomic.Uint64
	failures atomic.Uint64 // calls that failed (plugin errors, timeouts, crashes)
}

// Start verifies, launches and describes the plugin, and checks that it is
// of the kind the config block expects.
func Start(ctx context.Context, spec Spec, log *slog.Logger) (*Plugin, error) {
	if log == nil {
		log = slog.Default()
	}
	p := &Plugin{spec: spec, baseLog: log, log: log.With("plugin", spec.Name), backoff: DefaultBackoff}
	if err := p.launch(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Plugin) launch(ctx context.Context) error {
	if err := Verify(p.spec.Path, p.spec.SHA256); err != nil {
		return fmt.Errorf("%s %q: %w", p.spec.Kind, p.spec.Name, err)
	}
	// Launch labels the plugin's own log lines with plugin=Name itself.
	conn, err := sdk.Launch(ctx, sdk.LaunchOptions{Path: p.spec.Path, Name: p.spec.Name, Env: p.spec.Env, Logger: p.baseLog})
	if err != nil {
		return fmt.Errorf("%s %q: %w", p.spec.Kind, p.spec.Name, err)
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	info, err := conn.Describe(dctx)
	if err != nil {
		conn.Kill()
		return fmt.Errorf("%s %q (%s): %w", p.spec.Kind, p.spec.Name, p.spec.Path, err)
	}
	if p.spec.Kind != "" && info.Kind != p.spec.Kind {
		conn.Kill()
		return fmt.Errorf("%s %q: %s is a %s plugin, not a %s", p.spec.Kind, p.spec.Name, p.spec.Path, info.Kind, p.spec.Kind)
	}
	if info.FeatureSchemaVersion > sdk.FeatureSchemaVersion {
		conn.Kill()
		return fmt.Errorf("%s %q: built for feature schema version %d, but this core knows version %d; upgrade the core",
			p.spec.Kind, p.spec.Name, info.FeatureSchemaVersion, sdk.FeatureSchemaVersion)
	}
	p.mu.Lock()
	if p.state == StateStopped { // Stop came while a restart was launching
		p.mu.Unlock()
		conn.Kill()
		return fmt.Errorf("%s %q: %w", p.spec.Kind, p.spec.Name, ErrStopped)
	}
	p.conn, p.info, p.state, p.stats = conn, info, StateRunning, nil
	p.mu.Unlock()
	p.log.Info("plugin started", "path", p.spec.Path, "pid", conn.PID(), "version", info.Version, "protocol", conn.ProtocolVersion(), "transport", conn.Transport())
	return nil
}

// Name returns the config block's label.
func (p *Plugin) Name() string { return p.spec.Name }

// Kind returns the plugin's kind.
func (p *Plugin) Kind() sdk.Kind { return p.spec.Kind }

// Info returns what the plugin described.
func (p *Plugin) Info() sdk.Info {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.info
}

// Conn returns the current connection, or ErrFailed.
func (p *Plugin) Conn() (*sdk.Conn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == StateFailed || p.conn == nil {
		return nil, fmt.Errorf("%w: %s %q: %s", ErrFailed, p.spec.Kind, p.spec.Name, p.lastErr)
	}
	return p.conn, nil
}

// Configure sends cfg and remembers it for restarts.
func (p *Plugin) Configure(ctx context.Context, cfg sdk.Config) error {
	conn, err := p.Conn()
	if err != nil {
		return err
	}
	if err := conn.Configure(ctx, cfg); err != nil {
		return fmt.Errorf("%s %q: configure: %w", p.spec.Kind, p.spec.Name, err)
	}
	// What a plugin declares (a detector's labels, say) may depend on its
	// config, so ask again now that it is configured.
	info, err := conn.Describe(ctx)
	if err != nil {
		return fmt.Errorf("%s %q: describe after configure: %w", p.spec.Kind, p.spec.Name, err)
	}
	p.mu.Lock()
	p.cfg, p.info = &cfg, info
	p.mu.Unlock()
	return nil
}

// Crashed reports whether conn's process has died. A process that just
// closed its stream may take a moment to be reaped, so it waits briefly.
func Crashed(conn *sdk.Conn) bool {
	for i := 0; i < 20; i++ {
		if conn.Exited() {
			return true
		}
		if i >= 2 && conn.Ping() == nil {
			return false
		}
		time.Sleep(25 * time.Millisecond)
	}
	return conn.Exited()
}

// Restart replaces a crashed connection. failed is the connection the
// caller saw die: when another caller has already replaced it, Restart
// returns at once. It retries with backoff until ctx ends or the circuit
// breaker opens.
func (p *Plugin) Restart(ctx context.Context, failed *sdk.Conn, cause error) error {
	p.mu.Lock()
	if p.conn != failed {
		p.mu.Unlock()
		return nil
	}
	if p.state == StateFailed {
		p.mu.Unlock()
		return fmt.Errorf("%w: %s %q", ErrFailed, p.spec.Kind, p.spec.Name)
	}
	if p.state == StateStopped { // a process Stop killed is not a crash
		p.mu.Unlock()
		return fmt.Errorf("%s %q: %w", p.spec.Kind, p.spec.Name, ErrStopped)
	}
	now := time.Now()
	p.crashes = append(p.crashes, now)
	for len(p.crashes) > 0 && now.Sub(p.crashes[0]) > p.backoff.Window {
		p.crashes = p.crashes[1:]
	}
	p.lastErr = fmt.Sprint(cause)
	if len(p.crashes) > p.backoff.MaxCrashes {
		p.state = StateFailed
		p.mu.Unlock()
		p.log.Error("plugin failed: too many crashes", "crashes", len(p.crashes), "window", p.backoff.Window, "last_error", cause)
		failed.Kill()
		return fmt.Errorf("%w: %s %q crashed %d times in %s", ErrFailed, p.spec.Kind, p.spec.Name, len(p.crashes), p.backoff.Window)
	}
	p.state = StateRestarting
	cfg := p.cfg
	p.mu.Unlock()

	failed.Kill()
	p.log.Warn("plugin died; restarting", "cause", cause)
	delay := p.backoff.Min
	for attempt := 1; ; attempt++ {
		err := p.launch(ctx)
		if err == nil && cfg != nil {
			if err = p.Configure(ctx, *cfg); err != nil {
				if c, cerr := p.Conn(); cerr == nil {
					c.Kill()
				}
			}
		}
		if err == nil {
			n := p.restarts.Add(1)
			p.log.Info("plugin restarted", "restarts", n, "attempt", attempt)
			return nil
		}
		p.log.Warn("plugin restart failed", "attempt", attempt, "error", err, "retry_in", delay)
		if errors.Is(err, ErrStopped) {
			return err
		}
		if errors.Is(err, ErrChecksum) || errors.Is(err, os.ErrNotExist) || errors.Is(err, ErrNotFound) {
			p.setFailed(err)
			return err
		}
		select {
		case <-ctx.Done():
			p.setFailed(ctx.Err())
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, p.backoff.Max)
	}
}

func (p *Plugin) setFailed(err error) {
	p.mu.Lock()
	p.state, p.lastErr = StateFailed, err.Error()
	p.mu.Unlock()
}

// CountFailure records a failed call (error, timeout or bad answer).
func (p *Plugin) CountFailure(err error) {
	p.failures.Add(1)
	p.mu.Lock()
	p.lastErr = err.Error()
	p.mu.Unlock()
}

// Health is a plugin's state for /api/health and /metrics.
type Health struct {
	Name      string   `json:"name"`
	Kind      sdk.Kind `json:"kind"`
	Plugin    string   `json:"plugin"`
	Version   string   `json:"version"`
	State     State    `json:"state"`
	PID       int      `json:"pid,omitempty"`
	Restarts  uint64   `json:"restarts"`
	Failures  uint64   `json:"failures"`
	LastError string   `json:"last_error,omitempty"`
	// Reported is the plugin's own last Stats (nil until it answered):
	// its health, message, counters and Go runtime.
	Reported *sdk.Stats `json:"reported,omitempty"`
}

// Health reports the plugin's state.
func (p *Plugin) Health() Health {
	p.mu.Lock()
	defer p.mu.Unlock()
	h := Health{Name: p.spec.Name, Kind: p.spec.Kind, Plugin: p.info.Name, Version: p.info.Version, State: p.state,
		Restarts: p.restarts.Load(), Failures: p.failures.Load(), LastError: p.lastErr, Reported: p.stats}
	if p.conn != nil && p.state == StateRunning {
		h.PID = p.conn.PID()
	}
	return h
}

// Restarts returns how many times the plugin was restarted.
func (p *Plugin) Restarts() uint64 { return p.restarts.Load() }

// Stop ends the plugin process.
func (p *Plugin) Stop() {
	p.mu.Lock()
	conn := p.conn
	p.state = StateStopped
	p.mu.Unlock()
	if conn != nil {
		conn.Kill()
	}
}

// Watch checks the plugin every interval: it restarts it when its process
// has died, so an idle plugin is back before the next batch needs it, and
// otherwise asks for its Stats (health, counters, Go runtime).
func (p *Plugin) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.mu.Lock()
		conn, state := p.conn, p.state
		p.mu.Unlock()
		if state != StateRunning || conn == nil {
			continue
		}
		if conn.Exited() {
			_ = p.Restart(ctx, conn, errors.New("process exited"))
			continue
		}
		p.pollStats(ctx, conn, interval)
	}
}

// pollStats stores the plugin's answer to Stats. A plugin that does not
// answer within timeout keeps its previous report: a busy plugin is not
// a failed one, and a dead one is found by Exited.
func (p *Plugin) pollStats(ctx context.Context, conn *sdk.Conn, timeout time.Duration) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	st, err := conn.Stats(cctx)
	cancel()
	if err != nil {
		p.log.Debug("plugin stats", "err", err)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn == conn { // not restarted meanwhile
		wasHealthy := p.stats == nil || p.stats.Healthy
		switch {
		case wasHealthy && !st.Healthy:
			p.log.Warn("plugin reports unhealthy", "message", st.Message)
		case !wasHealthy && st.Healthy:
			p.log.Info("plugin reports healthy again", "message", st.Message)
		}
		p.stats = &st
	}
}
