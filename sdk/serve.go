package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"

	pb "github.com/netguardian/netguardian/sdk/proto/netguardian/v1"
)

// handshake is shared by the core and every plugin. The cookie only keeps
// people from running a plugin binary by hand; it is not a security measure.
var handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "NETGUARDIAN_PLUGIN",
	MagicCookieValue: "d3c5e9f2-netguardian-plugin-v1",
}

// bufferPool adds 64 KiB-4 MiB tiers to gRPC's default pool: a batch of
// 1024 packet summaries (~60 KiB) would otherwise take (and zero) a 1 MiB
// buffer per message, which cost a fifth of a capture plugin's CPU.
// The protobuf codec takes its buffers from the process-wide default pool,
// so it is replaced too.
var bufferPool = func() mem.BufferPool {
	p := newTieredPool(8, 12, 14, 15, 16, 17, 18, 19, 20, 22)
	experimental.SetDefaultBufferPool(p)
	return p
}()

// tieredPool is gRPC's binary tiered buffer pool without the zeroing of
// every buffer it hands out: gRPC fills each buffer before reading it
// (frames are read into it, messages marshalled into it), and clearing a
// 512 KiB buffer for every batch of frames cost 4-6 % of the CPU of the
// core and of a sink storing raw packets.
type tieredPool struct{ tiers []*poolTier }

type poolTier struct {
	size int
	pool sync.Pool // of *[]byte with cap >= size
}

func newTieredPool(exponents ...uint) *tieredPool {
	p := &tieredPool{}
	for _, e := range exponents {
		p.tiers = append(p.tiers, &poolTier{size: 1 << e})
	}
	return p
}

// Get returns a buffer of length n; its contents are whatever it held.
func (p *tieredPool) Get(n int) *[]byte {
	for _, t := range p.tiers {
		if n > t.size {
			continue
		}
		if b, ok := t.pool.Get().(*[]byte); ok {
			*b = (*b)[:n]
			return b
		}
		b := make([]byte, n, t.size)
		return &b
	}
	b := make([]byte, n) // larger than every tier: not pooled
	return &b
}

// Put keeps b in the largest tier it can serve.
func (p *tieredPool) Put(b *[]byte) {
	c := cap(*b)
	for i := len(p.tiers) - 1; i >= 0; i-- {
		if c >= p.tiers[i].size {
			p.tiers[i].pool.Put(b)
			return
		}
	}
}

// maxMessageBytes bounds one gRPC message: a batch of 1024 full-size frames
// with jumbo frames fits with room to spare.
const maxMessageBytes = 256 << 20

// Serve runs p as a plugin: it answers the core over the plugin protocol
// until the core goes away. p must implement Capture, Detector or Sink
// according to its Describe().Kind; a Sink that also implements Store
// answers queries. Serve does not return while the core is connected.
func Serve(p Plugin) {
	exitWithParent()
	info := fillInfo(p)
	if err := checkImplements(p, info); err != nil {
		fmt.Fprintln(os.Stderr, "netguardian plugin:", err)
		os.Exit(1)
	}
	// NETGUARDIAN_PLUGIN_CPUPROFILE=FILE profiles the plugin until it stops
	// (pass it through the plugin block's environment); a debugging aid.
	if path := os.Getenv("NETGUARDIAN_PLUGIN_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil && pprof.StartCPUProfile(f) == nil {
			defer func() {
				pprof.StopCPUProfile()
				f.Close()
			}()
		}
	}
	set := plugin.PluginSet{string(info.Kind): &grpcPlugin{impl: p, role: string(info.Kind)}}
	if info.ServesStore {
		set["store"] = &grpcPlugin{impl: p, role: "store"}
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  handshake,
		VersionedPlugins: map[int]plugin.PluginSet{ProtocolVersion: set},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			opts = append(opts, grpc.MaxRecvMsgSize(maxMessageBytes), grpc.MaxSendMsgSize(maxMessageBytes), experimental.BufferPool(bufferPool))
			opts = append(opts, pluginServerOptions()...)
			return plugin.DefaultGRPCServer(append(opts, streamServerOptions...))
		},
		Logger: hclog.New(&hclog.LoggerOptions{Output: logOutput, JSONFormat: true, Level: hclog.Info}),
	})
}

func fillInfo(p Plugin) Info {
	info := p.Describe()
	info.SDKVersion = Version
	if info.FeatureSchemaVersion == 0 {
		info.FeatureSchemaVersion = FeatureSchemaVersion
	}
	if _, ok := p.(Store); ok && info.Kind == KindSink {
		info.ServesStore = true
	}
	return info
}

func checkImplements(p Plugin, info Info) error {
	var ok bool
	switch info.Kind {
	case KindCapture:
		_, ok = p.(Capture)
	case KindDetector:
		_, ok = p.(Detector)
	case KindSink:
		_, ok = p.(Sink)
	default:
		return fmt.Errorf("%T describes itself as kind %q; want capture, detector or sink", p, info.Kind)
	}
	if !ok {
		return fmt.Errorf("%T describes itself as a %s but does not implement sdk.%s", p, info.Kind, kindInterface(info.Kind))
	}
	return nil
}

func kindInterface(k Kind) string {
	switch k {
	case KindCapture:
		return "Capture"
	case KindDetector:
		return "Detector"
	}
	return "Sink"
}

// grpcPlugin adapts a Plugin to go-plugin. role selects which services it
// registers, so a sink serving "sink" and "store" registers each once.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	impl Plugin
	role string
}

func (g *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if g.role == "store" {
		pb.RegisterStoreServiceServer(s, &storeServer{impl: g.impl.(Store)})
		return nil
	}
	st := &serverState{impl: g.impl}
	pb.RegisterPluginServiceServer(s, &pluginServer{st: st})
	switch Kind(g.role) {
	case KindCapture:
		pb.RegisterCaptureServiceServer(s, &captureServer{st: st, impl: g.impl.(Capture)})
	case KindDetector:
		pb.RegisterDetectorServiceServer(s, &detectorServer{impl: g.impl.(Detector)})
	case KindSink:
		pb.RegisterSinkServiceServer(s, &sinkServer{impl: g.impl.(Sink)})
	}
	return nil
}

// GRPCClient hands the raw connection to the core's Conn.
func (g *grpcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return c, nil
}

type serverState struct {
	impl    Plugin
	mu      sync.Mutex
	runtime Runtime
}

// recovered turns a panic in plugin code into an error, so one bad batch is
// reported to the core instead of killing the process.
func recovered(what string, err *error) {
	if r := recover(); r != nil {
		Logger().Error("panic in plugin", "call", what, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		*err = status.Errorf(codes.Internal, "%s panicked: %v", what, r)
	}
}

type pluginServer struct {
	pb.UnimplementedPluginServiceServer
	st *serverState
}

func (s *pluginServer) Describe(context.Context, *pb.Empty) (*pb.PluginInfo, error) {
	return infoToPB(fillInfo(s.st.impl))
}

func (s *pluginServer) Configure(ctx context.Context, req *pb.ConfigureRequest) (_ *pb.Empty, err error) {
	defer recovered("Configure", &err)
	rt := runtimeFromPB(req.Runtime)
	if err := s.st.impl.Configure(ctx, Config{JSON: []byte(req.ConfigJson), Runtime: rt}); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	s.st.mu.Lock()
	s.st.runtime = rt
	s.st.mu.Unlock()
	return &pb.Empty{}, nil
}

func (s *pluginServer) Stats(context.Context, *pb.Empty) (*pb.PluginStats, error) {
	v := Stats{Healthy: true}
	if st, ok := s.st.impl.(Statser); ok {
		v = st.Stats()
	}
	return &pb.PluginStats{Healthy: v.Healthy, Message: v.Message, Counters: v.Counters, Process: processToPB(readProcessStats())}, nil
}

type captureServer struct {
	pb.UnimplementedCaptureServiceServer
	st   *serverState
	impl Capture
}

func (s *captureServer) Capture(req *pb.CaptureRequest, stream pb.CaptureService_CaptureServer) (err error) {
	defer recovered("Capture", &err)
	s.st.mu.Lock()
	rt := s.st.runtime
	s.st.mu.Unlock()
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	w := NewPacketWriter(rt, req.ResumeFrom, func(b *PacketBatch) error { return stream.Send(packetsToPB(b)) })
	w.Start(ctx)
	if err := s.impl.Capture(ctx, req.ResumeFrom, w); err != nil {
		_ = w.Flush() // deliver what was read before the error
		return status.Error(codes.Aborted, err.Error())
	}
	return w.Flush()
}

type detectorServer struct {
	pb.UnimplementedDetectorServiceServer
	impl Detector
}

func (s *detectorServer) Detect(ctx context.Context, req *pb.FeatureBatch) (_ *pb.AlertBatch, err error) {
	defer recovered("Detect", &err)
	b, err := featuresFromPB(req)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	alerts, err := s.impl.Detect(ctx, b)
	if err != nil {
		return nil, status.Error(codes.Unknown, err.Error())
	}
	return alertsToPB(alerts), nil
}

type sinkServer struct {
	pb.UnimplementedSinkServiceServer
	impl Sink
}

// ConcurrentSink is a Sink whose Write may run for several batches at once.
// Serve then keeps up to WriteConcurrency Writes of a stream running and
// acknowledges each batch when its Write returns, so acknowledgements may
// come in another order than the batches (the core accepts that). A sink
// that waits for a slow commit can then receive, decode and prepare the
// next batches meanwhile, or commit several together. A Sink without it
// gets one Write at a time, in order.
type ConcurrentSink interface {
	Sink
	// WriteConcurrency returns how many Writes may run at once; it is
	// asked when the core opens a write stream, after Configure. Values
	// below 2 mean one at a time.
	WriteConcurrency() int
}

// Write serves one write stream: each batch is handed to the sink's Write
// in a goroutine of its own, at most WriteConcurrency at a time (one for a
// plain Sink), and acknowledged when that Write returns. The next batch is
// received while the sink writes, so transfer and decoding overlap the
// write even for a plain Sink.
func (s *sinkServer) Write(stream pb.SinkService_WriteServer) error {
	limit := 1
	if c, ok := s.impl.(ConcurrentSink); ok {
		limit = max(1, c.WriteConcurrency())
	}
	ctx := stream.Context()
	slots := make(chan struct{}, limit)
	var (
		wg      sync.WaitGroup
		sendMu  sync.Mutex // a gRPC stream takes one Send at a time
		sendErr error
	)
	// The handler returns only after every Write has finished and its ack
	// was sent: a stream must not be used after its handler returns.
	defer wg.Wait()
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			wg.Wait()
			return sendErr
		}
		if err != nil {
			return err
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ack := &pb.Ack{Seq: req.Seq}
			if err := s.write(ctx, req); err != nil {
				ack.Error = err.Error()
			}
			sendMu.Lock()
			if sendErr == nil {
				sendErr = stream.Send(ack)
			}
			sendMu.Unlock()
			<-slots // after the ack: with one slot, acks keep the batches' order
		}()
	}
}

func (s *sinkServer) write(ctx context.Context, req *pb.RecordBatch) (err error) {
	defer recovered("Write", &err)
	rec, err := recordsFromPB(req)
	if err != nil {
		return err
	}
	return s.impl.Write(ctx, rec)
}

type storeServer struct {
	pb.UnimplementedStoreServiceServer
	impl Store
}

func storeErr(err error) error {
	if errors.Is(err, ErrBadCursor) {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	return status.Error(codes.Unavailable, err.Error())
}

func (s *storeServer) QueryFeatures(ctx context.Context, q *pb.FeatureQuery) (*pb.FeatureBatch, error) {
	src, err := addrFromBytes(q.SrcAddr)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	b, err := s.impl.QueryFeatures(ctx, FeatureQuery{Window: secs(q.WindowSeconds), Src: src, Range: rangeFromPB(q.Range), Limit: int(q.Limit)})
	if err != nil {
		return nil, storeErr(err)
	}
	return featuresToPB(b), nil
}

func (s *storeServer) QueryProtocols(ctx context.Context, q *pb.ProtocolQuery) (*pb.ProtocolDistribution, error) {
	counts, err := s.impl.QueryProtocols(ctx, rangeFromPB(q.Range))
	if err != nil {
		return nil, storeErr(err)
	}
	out := &pb.ProtocolDistribution{}
	for _, c := range counts {
		out.Protocols = append(out.Protocols, &pb.ProtocolCount{Protocol: c.Protocol, Packets: c.Packets, Bytes: c.Bytes})
	}
	return out, nil
}

func (s *storeServer) QueryTopSources(ctx context.Context, q *pb.TopSourcesQuery) (*pb.TopSources, error) {
	tops, err := s.impl.QueryTopSources(ctx, TopSourcesQuery{By: q.By, Range: rangeFromPB(q.Range), Limit: int(q.Limit)})
	if err != nil {
		return nil, storeErr(err)
	}
	out := &pb.TopSources{}
	for _, t := range tops {
		out.Sources = append(out.Sources, &pb.SourceTotal{SrcAddr: addrBytes(t.Src), Packets: t.Packets, Bytes: t.Bytes})
	}
	return out, nil
}

func (s *storeServer) QueryAlerts(ctx context.Context, q *pb.AlertQuery) (*pb.AlertPage, error) {
	src, err := addrFromBytes(q.SrcAddr)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	page, err := s.impl.QueryAlerts(ctx, AlertQuery{Severity: Severity(q.Severity), Label: q.Label, Src: src, Range: rangeFromPB(q.Range), Limit: int(q.Limit), Cursor: q.Cursor})
	if err != nil {
		return nil, storeErr(err)
	}
	return &pb.AlertPage{Alerts: alertsToPB(page.Alerts).Alerts, NextCursor: page.NextCursor}, nil
}

// logOutput is the plugin's real stderr, captured before go-plugin redirects
// os.Stderr; the core reads JSON log lines from it.
var logOutput io.Writer = os.Stderr

var (
	loggerOnce sync.Once
	logger     *slog.Logger
)

// Logger returns the plugin's logger. Its lines reach the core's log,
// prefixed with the plugin's name. Use it instead of printing to stderr.
func Logger() *slog.Logger {
	loggerOnce.Do(func() {
		logger = slog.New(slog.NewJSONHandler(logOutput, &slog.HandlerOptions{
			Level: slog.LevelDebug,
			ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
				if len(groups) > 0 {
					return a
				}
				switch a.Key {
				case slog.TimeKey:
					a.Key = "@timestamp"
				case slog.LevelKey:
					a.Key = "@level"
					a.Value = slog.StringValue(levelName(a.Value.Any()))
				case slog.MessageKey:
					a.Key = "@message"
				}
				return a
			},
		}))
	})
	return logger
}

func levelName(v any) string {
	l, _ := v.(slog.Level)
	switch {
	case l >= slog.LevelError:
		return "error"
	case l >= slog.LevelWarn:
		return "warn"
	case l >= slog.LevelInfo:
		return "info"
	}
	return "debug"
}
