package api

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/netguardian/netguardian/core/pipeline"
	"github.com/netguardian/netguardian/sdk"
)

// Defaults for Config fields left zero.
const (
	DefaultListen           = "127.0.0.1:5000"
	DefaultSnapshotInterval = 2 * time.Second
	DefaultActiveFor        = 5 * time.Minute
	DefaultRateLimit        = 20 // requests per second per client address
	DefaultRateBurst        = 60
)

// Config is what the server needs. Only Store is required.
type Config struct {
	// Listen is host:port; a non-loopback host needs Token.
	Listen string
	// Token, when set, is the bearer token every data route requires.
	Token string
	// AllowedOrigins (scheme://host[:port]) may open the WebSocket besides
	// the API's own origin.
	AllowedOrigins []string
	// SnapshotInterval is how often WebSocket clients get a snapshot.
	SnapshotInterval time.Duration
	// ActiveFor is how long after its window ended an alert stays active.
	ActiveFor time.Duration

	// Store answers the history queries.
	Store sdk.Store
	// Stats returns the pipeline's live counters; nil serves zeros.
	Stats func() pipeline.Stats
	// Plugins lists what each configured plugin described; nil serves none.
	Plugins func() []PluginInfo
	Log     *slog.Logger

	// RateLimit is the sustained requests per second one client address
	// may make, RateBurst how many at once.
	RateLimit float64
	RateBurst int
}

// PluginInfo is one configured plugin: its block label and its Describe.
type PluginInfo struct {
	Name string // the config block's label ("replay" in capture "replay")
	Info sdk.Info
}

// tuning holds knobs that only tests change.
type tuning struct {
	clientQueue    int           // messages a WebSocket client may fall behind before it is dropped
	writeWait      time.Duration // longest a WebSocket write may block
	pingPeriod     time.Duration
	pongWait       time.Duration
	sendBuffer     int           // SO_SNDBUF of WebSocket connections, so a stalled peer is noticed soon
	queryTimeout   time.Duration // per store query
	dropWindow     time.Duration // drops this recent make the health degraded
	maxActive      int           // (source, label) pairs the active set tracks
	snapshotActive int           // active alerts a snapshot carries
}

func defaultTuning() tuning {
	return tuning{
		clientQueue: 1024, writeWait: 10 * time.Second, pingPeriod: 30 * time.Second, pongWait: 60 * time.Second,
		sendBuffer: 64 << 10, queryTimeout: 10 * time.Second, dropWindow: time.Minute,
		maxActive: 10_000, snapshotActive: 100,
	}
}

// Server is the API server. Create it with New; serve it with Serve, or
// mount Handler and call Run.
type Server struct {
	cfg      Config
	tune     tuning
	log      *slog.Logger
	token    *[sha256.Size]byte // nil: no authentication
	origins  map[string]bool
	now      func() time.Time
	handler  http.Handler
	router   *mux.Router
	hub      *hub
	active   *activeSet
	drops    *dropWatch
	limits   *limiter
	registry *prometheus.Registry
	running  atomic.Bool
}

// New checks cfg and builds the server. It refuses a non-loopback Listen
// address without a Token.
func New(cfg Config) (*Server, error) { return newServer(cfg, defaultTuning()) }

func newServer(cfg Config, tune tuning) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("api: no store to serve")
	}
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("api: listen address %q: %w", cfg.Listen, err)
	}
	if cfg.Token == "" && !isLoopback(host) {
		return nil, errNoToken(cfg.Listen)
	}
	if cfg.SnapshotInterval <= 0 {
		cfg.SnapshotInterval = DefaultSnapshotInterval
	}
	if cfg.ActiveFor <= 0 {
		cfg.ActiveFor = DefaultActiveFor
	}
	if cfg.RateLimit <= 0 {
		cfg.RateLimit = DefaultRateLimit
	}
	if cfg.RateBurst <= 0 {
		cfg.RateBurst = DefaultRateBurst
	}
	if cfg.Stats == nil {
		cfg.Stats = func() pipeline.Stats { return pipeline.Stats{} }
	}
	if cfg.Plugins == nil {
		cfg.Plugins = func() []PluginInfo { return nil }
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	s := &Server{
		cfg: cfg, tune: tune, log: cfg.Log.With("component", "api"), origins: map[string]bool{}, now: time.Now,
		active: newActiveSet(cfg.ActiveFor, tune.maxActive),
		drops:  &dropWatch{window: tune.dropWindow},
		limits: newLimiter(cfg.RateLimit, cfg.RateBurst),
	}
	for _, o := range cfg.AllowedOrigins {
		norm, err := normalizeOrigin(o)
		if err != nil {
			return nil, fmt.Errorf("api: allowed origin %q: %w", o, err)
		}
		s.origins[norm] = true
	}
	if cfg.Token != "" {
		h := sha256.Sum256([]byte(cfg.Token))
		s.token = &h
	}
	s.hub = newHub(s)
	s.registry = prometheus.NewRegistry()
	if err := s.registerMetrics(); err != nil {
		return nil, err
	}
	s.router = s.routes()
	s.handler = s.middleware(s.router)
	return s, nil
}

func errNoToken(listen string) error {
	return fmt.Errorf("api: refusing to listen on %q without a token: a non-loopback address accepts connections from other hosts, "+
		"so set api.token (for example token = env(\"NETGUARDIAN_API_TOKEN\")) or listen on 127.0.0.1", listen)
}

// isLoopback reports whether host only accepts local connections. Names
// other than localhost are not resolved (what they resolve to can change),
// and an empty host or a wildcard address listens everywhere.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return ip != nil && ip.IsLoopback()
}

// normalizeOrigin lower-cases scheme://host[:port] and rejects anything
// else, so that comparing with a browser's Origin header is exact.
func normalizeOrigin(o string) (string, error) {
	u, err := url.Parse(strings.ToLower(strings.TrimSpace(o)))
	if err != nil {
		return "", err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return "", errors.New("want scheme://host[:port] with scheme http or https")
	}
	return u.Scheme + "://" + u.Host, nil
}

// Handler returns the server's HTTP handler. Snapshots flow only while Run
// (or Serve) runs.
func (s *Server) Handler() http.Handler { return s.handler }

// PublishAlert records a new alert in the active set and pushes it to
// every WebSocket client at once. It never blocks on a client: it is the
// pipeline's OnAlert hook.
func (s *Server) PublishAlert(a sdk.Alert) {
	s.active.add(a)
	s.hub.publishAlert(a)
}

// ObservePackets moves the active-alert clock to the newest packet time of
// b: the pipeline's OnPackets hook. Without it, the clock is the newest
// alert window end.
func (s *Server) ObservePackets(b *sdk.PacketBatch) {
	var newest int64
	for _, t := range b.Timestamps {
		newest = max(newest, t)
	}
	if newest > 0 {
		s.active.observe(time.Unix(0, newest))
	}
}

// Run sends a snapshot to WebSocket clients every SnapshotInterval until
// ctx is done, then closes them. Serve calls it; call it yourself only
// when mounting Handler elsewhere.
func (s *Server) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("api: Run called twice")
	}
	defer s.running.Store(false)
	return s.hub.run(ctx)
}

// Serve listens on Config.Listen and serves until ctx is done.
func (s *Server) Serve(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("api: listen: %w", err)
	}
	return s.ServeListener(ctx, ln)
}

// ServeListener serves on ln until ctx is done, then shuts down: requests
// in flight get 5 s, WebSocket clients a close frame. It closes ln. Like
// New, it refuses a non-loopback listener without a token.
func (s *Server) ServeListener(ctx context.Context, ln net.Listener) error {
	if s.token == nil {
		if a, ok := ln.Addr().(*net.TCPAddr); !ok || !a.IP.IsLoopback() {
			ln.Close()
			return errNoToken(ln.Addr().String())
		}
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second, // WebSocket connections set their own deadlines
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	runDone := make(chan error, 1)
	go func() { runDone <- s.Run(runCtx) }()

	serveDone := make(chan error, 1)
	go func() { serveDone <- srv.Serve(ln) }()
	s.log.Info("api listening", "addr", ln.Addr().String(), "auth", s.token != nil)

	var err error
	select {
	case err = <-serveDone:
	case <-ctx.Done():
		shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = srv.Shutdown(shutCtx)
		cancel()
		<-serveDone
	}
	stopRun()
	if rerr := <-runDone; err == nil && rerr != nil && !errors.Is(rerr, context.Canceled) {
		err = rerr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	return nil
}
