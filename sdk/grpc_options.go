package sdk

import "google.golang.org/grpc"

// Flow control and socket buffers for the streams between core and plugins.
// A packet batch is ~60 KB, about gRPC's default 64 KiB stream window: the
// sender stalled after each batch until the receiver's window update came
// back, so neither process kept its CPU busy (capture → core ran at 1.4 M
// packets/s with both processes partly idle). Fixed windows of several
// batches let batches stream; larger socket buffers send a batch in one
// write instead of two or three. The windows bound what a connection may
// buffer unread, so they are kept to ~30 batches: 8/16 MiB windows went no
// faster and put the 100k-source analyze over its 300 MB RSS budget.
const (
	streamWindowBytes     = 2 << 20
	connWindowBytes       = 4 << 20
	streamSocketBufferLen = 256 << 10
)

var streamDialOptions = []grpc.DialOption{
	grpc.WithInitialWindowSize(streamWindowBytes),
	grpc.WithInitialConnWindowSize(connWindowBytes),
	grpc.WithReadBufferSize(streamSocketBufferLen),
	grpc.WithWriteBufferSize(streamSocketBufferLen),
}

var streamServerOptions = []grpc.ServerOption{
	grpc.InitialWindowSize(streamWindowBytes),
	grpc.InitialConnWindowSize(connWindowBytes),
	grpc.ReadBufferSize(streamSocketBufferLen),
	grpc.WriteBufferSize(streamSocketBufferLen),
}
