package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/experimental"
	grpcpeer "google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	pb "github.com/netguardian/netguardian/sdk/proto/netguardian/v1"
)

// This file is the core's side of the plugin protocol. The core's plugin
// host (core/host) and the conformance harness (sdk/plugintest) use it;
// plugin authors do not need it.

// LaunchOptions says how to start a plugin process.
type LaunchOptions struct {
	Path string
	// Name prefixes the plugin's log lines; defaults to the file name.
	Name string
	// Env is the plugin's whole environment ("KEY=value"): plugins do not
	// inherit the core's environment, so secrets reach only the plugins
	// they are meant for.
	Env    []string
	Logger *slog.Logger
	// StartTimeout bounds the handshake (default 10s).
	StartTimeout time.Duration
}

// Conn is a running plugin process and the connection to it.
type Conn struct {
	client  *plugin.Client
	conn    *grpc.ClientConn
	version int
	plugin  pb.PluginServiceClient
	capture pb.CaptureServiceClient
	detect  pb.DetectorServiceClient
	sink    pb.SinkServiceClient
	store   pb.StoreServiceClient
	logs    *logForwarder

	transport atomic.Value // string: how the plugin socket was authenticated, learnt by Describe
}

// Launch starts the plugin at opts.Path and completes the handshake. It
// fails when the binary is missing, is not a NetGuardian plugin, or speaks
// a protocol version this core does not support.
func Launch(ctx context.Context, opts LaunchOptions) (*Conn, error) {
	if _, err := os.Stat(opts.Path); err != nil {
		return nil, fmt.Errorf("plugin %s: %w", opts.Path, err)
	}
	name := opts.Name
	if name == "" {
		name = opts.Path[strings.LastIndex(opts.Path, "/")+1:]
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	timeout := opts.StartTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	fwd := &logForwarder{log: log.With("plugin", name)}
	cmd := exec.CommandContext(context.WithoutCancel(ctx), opts.Path)
	cmd.Env = append([]string(nil), opts.Env...)
	clientSet := plugin.PluginSet{}
	for _, k := range []string{string(KindCapture), string(KindDetector), string(KindSink), "store"} {
		clientSet[k] = &grpcPlugin{role: k}
	}
	dialOpts := []grpc.DialOption{grpc.WithDefaultCallOptions(
		grpc.MaxCallRecvMsgSize(maxMessageBytes), grpc.MaxCallSendMsgSize(maxMessageBytes)),
		experimental.WithBufferPool(bufferPool)}
	dialOpts = append(dialOpts, streamDialOptions...)
	dialOpts = append(dialOpts, coreDialOptions(cmd)...)
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  handshake,
		VersionedPlugins: map[int]plugin.PluginSet{ProtocolVersion: clientSet},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         autoMTLS, // see peercred_linux.go
		SkipHostEnv:      true,
		StartTimeout:     timeout,
		// go-plugin's own parser of plugin logs trusts their JSON; we read
		// stderr ourselves so a plugin that lies cannot crash the core.
		Logger:          hclog.New(&hclog.LoggerOptions{Level: hclog.Off, Output: io.Discard}),
		Stderr:          fwd,
		SyncStderr:      &logForwarder{log: fwd.log},
		SyncStdout:      &logForwarder{log: fwd.log},
		GRPCDialOptions: dialOpts,
	})
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("start plugin %s: %w", opts.Path, explainStartError(err))
	}
	raw, err := rpc.Dispense(string(KindCapture))
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("start plugin %s: %w", opts.Path, err)
	}
	cc := raw.(*grpc.ClientConn)
	return &Conn{
		client: client, conn: cc, version: client.NegotiatedVersion(), logs: fwd,
		plugin: pb.NewPluginServiceClient(cc), capture: pb.NewCaptureServiceClient(cc),
		detect: pb.NewDetectorServiceClient(cc), sink: pb.NewSinkServiceClient(cc), store: pb.NewStoreServiceClient(cc),
	}, nil
}

// pluginVersionRE finds the version a plugin offered in go-plugin's
// "incompatible API version with plugin. Plugin version: 2, ..." error.
var pluginVersionRE = regexp.MustCompile(`Plugin version: (\d+)`)

func explainStartError(err error) error {
	msg := err.Error()
	lower := strings.ToLower(msg) // go-plugin changed the case of its messages between releases
	switch {
	case strings.Contains(lower, "incompatible core api version"):
		return fmt.Errorf("the plugin was built with an incompatible go-plugin release; rebuild it against the current sdk: %w", err)
	case strings.Contains(lower, "incompatible api version"):
		theirs := "an unknown protocol version"
		if m := pluginVersionRE.FindStringSubmatch(msg); m != nil {
			theirs = "protocol version " + m[1]
		}
		return fmt.Errorf("unsupported plugin protocol: the plugin speaks %s, this core supports %d; rebuild the plugin against an sdk that speaks protocol %d (%s)",
			theirs, ProtocolVersion, ProtocolVersion, msg)
	case strings.Contains(msg, "Unrecognized remote plugin message"):
		return fmt.Errorf("not a NetGuardian plugin (it did not answer the plugin handshake): %w", err)
	}
	return err
}

// ProtocolVersion returns the protocol version negotiated with the plugin.
func (c *Conn) ProtocolVersion() int { return c.version }

// PID returns the plugin's process id.
func (c *Conn) PID() int {
	if rc := c.client.ReattachConfig(); rc != nil {
		return rc.Pid
	}
	return 0
}

// Exited reports whether the plugin process has ended.
func (c *Conn) Exited() bool { return c.client.Exited() }

// Ping checks that the plugin answers.
func (c *Conn) Ping() error {
	rpc, err := c.client.Client()
	if err != nil {
		return err
	}
	return rpc.Ping()
}

// Kill ends the plugin: gracefully first, then by force.
func (c *Conn) Kill() { c.client.Kill() }

// CallError turns a gRPC error into one carrying only the plugin's message.
func CallError(err error) error {
	if err == nil {
		return nil
	}
	if s, ok := status.FromError(err); ok {
		return errors.New(s.Message())
	}
	return err
}

// Describe asks the plugin what it is.
func (c *Conn) Describe(ctx context.Context) (Info, error) {
	var peer grpcpeer.Peer
	p, err := c.plugin.Describe(ctx, &pb.Empty{}, grpc.Peer(&peer))
	if err != nil {
		return Info{}, fmt.Errorf("describe: %w", CallError(err))
	}
	if peer.AuthInfo != nil {
		c.transport.Store(peer.AuthInfo.AuthType())
	}
	return infoFromPB(p)
}

// Transport says how the plugin's socket was authenticated ("peercred":
// the kernel's peer credentials; "tls": go-plugin's mutual TLS), once
// Describe has been called.
func (c *Conn) Transport() string {
	s, _ := c.transport.Load().(string)
	return s
}

// Addr returns the address of the plugin's socket.
func (c *Conn) Addr() net.Addr {
	if rc := c.client.ReattachConfig(); rc != nil {
		return rc.Addr
	}
	return nil
}

// Configure sends the decoded config block and runtime settings.
func (c *Conn) Configure(ctx context.Context, cfg Config) error {
	_, err := c.plugin.Configure(ctx, &pb.ConfigureRequest{ConfigJson: string(cfg.JSON), Runtime: runtimeToPB(cfg.Runtime)})
	return CallError(err)
}

// Stats asks the plugin for its health and counters.
func (c *Conn) Stats(ctx context.Context) (Stats, error) {
	s, err := c.plugin.Stats(ctx, &pb.Empty{})
	if err != nil {
		return Stats{}, CallError(err)
	}
	return Stats{Healthy: s.Healthy, Message: s.Message, Counters: s.Counters, Process: processFromPB(s.Process)}, nil
}

// PacketStream receives a capture plugin's batches.
type PacketStream struct {
	s pb.CaptureService_CaptureClient
}

// Capture starts the plugin's capture from input index from.
func (c *Conn) Capture(ctx context.Context, from uint64) (*PacketStream, error) {
	s, err := c.capture.Capture(ctx, &pb.CaptureRequest{ResumeFrom: from}, grpc.ForceCodecV2(capturePacketCodec))
	if err != nil {
		return nil, CallError(err)
	}
	return &PacketStream{s: s}, nil
}

// Recv returns the next batch; io.EOF when the input ended. The batch
// comes from a pool: call its Recycle once nothing refers to it.
func (p *PacketStream) Recv() (*PacketBatch, error) {
	b, err := recvPacketBatch(p.s.RecvMsg)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, CallError(err)
	}
	if err := b.Validate(); err != nil {
		b.Recycle()
		return nil, err
	}
	return b, nil
}

// Detect sends one feature batch and returns the detector's alerts.
func (c *Conn) Detect(ctx context.Context, b *FeatureBatch) ([]Alert, error) {
	r, err := c.detect.Detect(ctx, featuresToPB(b))
	if err != nil {
		return nil, CallError(err)
	}
	return alertsFromPB(r)
}

// RecordStream sends record batches to a sink and receives acks.
type RecordStream struct{ s pb.SinkService_WriteClient }

// OpenRecords opens the sink's write stream.
func (c *Conn) OpenRecords(ctx context.Context) (*RecordStream, error) {
	s, err := c.sink.Write(ctx)
	if err != nil {
		return nil, CallError(err)
	}
	return &RecordStream{s: s}, nil
}

// Send sends one batch; exactly one of rec's record fields must be set.
func (r *RecordStream) Send(rec Records) error {
	return CallError(r.s.Send(recordsToPB(rec)))
}

// Ack is a sink's answer for one batch.
type Ack struct {
	Seq uint64
	// Err is the sink's reason when it could not store the batch.
	Err string
}

// Recv waits for the next ack.
func (r *RecordStream) Recv() (Ack, error) {
	a, err := r.s.Recv()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return Ack{}, io.EOF
		}
		return Ack{}, CallError(err)
	}
	return Ack{Seq: a.Seq, Err: a.Error}, nil
}

// CloseSend tells the sink no more batches follow.
func (r *RecordStream) CloseSend() error { return r.s.CloseSend() }

// Store returns a client of the plugin's queries (sinks that serve store).
func (c *Conn) Store() Store { return storeClient{c.store} }

type storeClient struct{ c pb.StoreServiceClient }

func storeCallErr(err error) error {
	if s, ok := status.FromError(err); ok && strings.Contains(s.Message(), ErrBadCursor.Error()) {
		return fmt.Errorf("%w: %s", ErrBadCursor, s.Message())
	}
	return CallError(err)
}

// checkLimit rejects what the wire cannot carry: limits are unsigned there.
func checkLimit(n int) error {
	if n < 0 || n > math.MaxInt32 {
		return fmt.Errorf("limit %d out of range", n)
	}
	return nil
}

func (s storeClient) QueryFeatures(ctx context.Context, q FeatureQuery) (*FeatureBatch, error) {
	if err := checkLimit(q.Limit); err != nil {
		return nil, err
	}
	r, err := s.c.QueryFeatures(ctx, &pb.FeatureQuery{WindowSeconds: int64(q.Window / time.Second), SrcAddr: addrBytes(q.Src), Range: rangeToPB(q.Range), Limit: uint32(q.Limit)})
	if err != nil {
		return nil, storeCallErr(err)
	}
	return featuresFromPB(r)
}

func (s storeClient) QueryProtocols(ctx context.Context, q TimeRange) ([]ProtocolCount, error) {
	r, err := s.c.QueryProtocols(ctx, &pb.ProtocolQuery{Range: rangeToPB(q)})
	if err != nil {
		return nil, storeCallErr(err)
	}
	out := make([]ProtocolCount, 0, len(r.Protocols))
	for _, p := range r.Protocols {
		out = append(out, ProtocolCount{Protocol: p.Protocol, Packets: p.Packets, Bytes: p.Bytes})
	}
	return out, nil
}

func (s storeClient) QueryTopSources(ctx context.Context, q TopSourcesQuery) ([]SourceTotal, error) {
	if err := checkLimit(q.Limit); err != nil {
		return nil, err
	}
	r, err := s.c.QueryTopSources(ctx, &pb.TopSourcesQuery{By: q.By, Range: rangeToPB(q.Range), Limit: uint32(q.Limit)})
	if err != nil {
		return nil, storeCallErr(err)
	}
	out := make([]SourceTotal, 0, len(r.Sources))
	for _, t := range r.Sources {
		src, err := addrFromBytes(t.SrcAddr)
		if err != nil {
			return nil, err
		}
		out = append(out, SourceTotal{Src: src, Packets: t.Packets, Bytes: t.Bytes})
	}
	return out, nil
}

func (s storeClient) QueryAlerts(ctx context.Context, q AlertQuery) (AlertPage, error) {
	if err := checkLimit(q.Limit); err != nil {
		return AlertPage{}, err
	}
	// Protobuf strings must be UTF-8: a garbage cursor would fail in the
	// transport instead of reaching the store as a bad cursor.
	if !utf8.ValidString(q.Cursor) {
		return AlertPage{}, fmt.Errorf("%w: not UTF-8", ErrBadCursor)
	}
	r, err := s.c.QueryAlerts(ctx, &pb.AlertQuery{Severity: string(q.Severity), Label: q.Label, SrcAddr: addrBytes(q.Src), Range: rangeToPB(q.Range), Limit: uint32(q.Limit), Cursor: q.Cursor})
	if err != nil {
		return AlertPage{}, storeCallErr(err)
	}
	alerts, err := alertsFromPB(&pb.AlertBatch{Alerts: r.Alerts})
	if err != nil {
		return AlertPage{}, err
	}
	return AlertPage{Alerts: alerts, NextCursor: r.NextCursor}, nil
}

// logForwarder turns a plugin's stderr into log records of the core. Lines
// in the SDK's JSON format keep their level and attributes; other lines
// (a panic's stack trace, stray prints) are logged as they are.
type logForwarder struct {
	log     *slog.Logger
	mu      sync.Mutex
	buf     bytes.Buffer
	inPanic bool
}

func (f *logForwarder) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.buf.Write(p)
	for {
		line, err := f.buf.ReadBytes('\n')
		if err != nil { // incomplete line: keep it for the next write
			f.buf.Reset()
			f.buf.Write(line)
			if f.buf.Len() > 64<<10 { // a line this long is not a log line; emit it cut
				f.emit(f.buf.Bytes())
				f.buf.Reset()
			}
			return len(p), nil
		}
		f.emit(bytes.TrimRight(line, "\r\n"))
	}
}

func (f *logForwarder) emit(line []byte) {
	if len(bytes.TrimSpace(line)) == 0 {
		return
	}
	var entry map[string]any
	if line[0] == '{' && json.Unmarshal(line, &entry) == nil {
		msg, _ := entry["@message"].(string)
		lvl, _ := entry["@level"].(string)
		attrs := make([]any, 0, 2*len(entry))
		for k, v := range entry {
			if !strings.HasPrefix(k, "@") {
				attrs = append(attrs, k, v)
			}
		}
		f.log.Log(context.Background(), parseLevel(lvl), msg, attrs...)
		return
	}
	s := string(line)
	if strings.HasPrefix(s, "panic: ") || strings.HasPrefix(s, "fatal error: ") {
		f.inPanic = true
	}
	level := slog.LevelInfo
	if f.inPanic {
		level = slog.LevelError
	}
	f.log.Log(context.Background(), level, s)
}

func parseLevel(s string) slog.Level {
	switch strings.ToLower(s) {
	case "trace", "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}
