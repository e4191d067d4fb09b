package plugintest

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
)

// tbHandler writes log records (the plugin's own lines, forwarded by the
// host, and the host's) with t.Logf, so they show with -v or when the test
// fails. Records that arrive after the test ended are dropped: t.Logf
// would panic.
type tbHandler struct {
	state *tbLogState
	attrs []slog.Attr
	group string
}

type tbLogState struct {
	mu     sync.Mutex
	t      TB
	closed bool
}

func newTBLogger(t TB) *slog.Logger {
	st := &tbLogState{t: t}
	t.Cleanup(func() {
		st.mu.Lock()
		st.closed = true
		st.mu.Unlock()
	})
	return slog.New(&tbHandler{state: st})
}

func (h *tbHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *tbHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	write := func(a slog.Attr) bool {
		key := a.Key
		if h.group != "" {
			key = h.group + "." + key
		}
		fmt.Fprintf(&b, " %s=%v", key, a.Value)
		return true
	}
	for _, a := range h.attrs {
		write(a)
	}
	r.Attrs(write)
	h.state.mu.Lock()
	defer h.state.mu.Unlock()
	if !h.state.closed {
		h.state.t.Logf("%s", b.String())
	}
	return nil
}

func (h *tbHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &tbHandler{state: h.state, attrs: append(append([]slog.Attr(nil), h.attrs...), attrs...), group: h.group}
}

func (h *tbHandler) WithGroup(name string) slog.Handler {
	g := name
	if h.group != "" {
		g = h.group + "." + name
	}
	return &tbHandler{state: h.state, attrs: h.attrs, group: g}
}
