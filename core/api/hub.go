package api

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/netguardian/netguardian/sdk"
)

// hub fans snapshots and alerts out to the dashboard's WebSocket clients.
// Each message is encoded once (a PreparedMessage) and queued to every
// client without blocking; a client whose bounded queue is full is too
// slow and is disconnected, so it never delays the others or the
// pipeline calling PublishAlert.
type hub struct {
	s        *Server
	upgrader websocket.Upgrader

	mu      sync.Mutex
	clients map[*client]struct{}
	last    *websocket.PreparedMessage // newest snapshot, sent to each new client at once
	closed  bool

	// previous snapshot's counters, for packets/s and bits/s
	prevAt             time.Time
	prevPkts, prevByte uint64

	dropped   atomic.Uint64 // clients disconnected for being slow
	connected atomic.Uint64 // clients ever accepted
}

type client struct {
	conn *websocket.Conn
	send chan *websocket.PreparedMessage
	gone chan struct{} // closed by stop
	once sync.Once
	// goingAway: the server is shutting down, so the writer sends a close
	// frame; otherwise the connection is cut at once.
	goingAway atomic.Bool
}

func newHub(s *Server) *hub {
	h := &hub{s: s, clients: map[*client]struct{}{}}
	h.upgrader = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   1024,
		WriteBufferSize:  16 << 10,
		WriteBufferPool:  &sync.Pool{}, // idle clients do not each hold a buffer
		Subprotocols:     []string{wsProtocol},
		// serveWS checks the origin itself to answer in JSON.
		CheckOrigin: func(*http.Request) bool { return true },
		Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
			writeJSON(w, status, &apiError{Message: "websocket: " + reason.Error()})
		},
	}
	return h
}

// stop ends the client once: the writer returns and the hub forgets it.
// Unless the server is going away, the connection is closed here, which
// also unblocks a writer stuck on a peer that stopped reading.
func (c *client) stop(goingAway bool) {
	c.once.Do(func() {
		c.goingAway.Store(goingAway)
		close(c.gone)
		if !goingAway {
			c.conn.Close()
		}
	})
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	if !s.originAllowed(r) {
		writeJSON(w, http.StatusForbidden, &apiError{Message: "origin not allowed"})
		return
	}
	// The token subprotocol is never echoed: the upgrader only selects
	// netguardian.v1.
	conn, err := s.hub.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	if tc, ok := conn.NetConn().(*net.TCPConn); ok && s.tune.sendBuffer > 0 {
		// A small kernel buffer makes a peer that stopped reading block our
		// writes within a few messages instead of megabytes.
		tc.SetWriteBuffer(s.tune.sendBuffer)
	}
	c := &client{conn: conn, send: make(chan *websocket.PreparedMessage, s.tune.clientQueue), gone: make(chan struct{})}
	if !s.hub.add(c) {
		conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down"), time.Now().Add(time.Second))
		conn.Close()
		return
	}
	go s.hub.readPump(c)
	s.hub.writePump(c)
}

func (h *hub) add(c *client) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.clients[c] = struct{}{}
	h.connected.Add(1)
	if h.last != nil {
		c.send <- h.last
	}
	return true
}

func (h *hub) remove(c *client) {
	h.mu.Lock()
	delete(h.clients, c)
	h.mu.Unlock()
}

func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// readPump reads (and ignores) what the client sends, which keeps pongs
// flowing; a client that is silent past pongWait is gone.
func (h *hub) readPump(c *client) {
	defer c.stop(false)
	c.conn.SetReadLimit(4 << 10)
	deadline := func() { c.conn.SetReadDeadline(time.Now().Add(h.s.tune.pongWait)) }
	deadline()
	c.conn.SetPongHandler(func(string) error { deadline(); return nil })
	for {
		if _, _, err := c.conn.ReadMessage(); err != nil {
			return
		}
		deadline()
	}
}

func (h *hub) writePump(c *client) {
	ping := time.NewTicker(h.s.tune.pingPeriod)
	defer func() {
		ping.Stop()
		h.remove(c)
		c.stop(false)
	}()
	for {
		select {
		case m := <-c.send:
			c.conn.SetWriteDeadline(time.Now().Add(h.s.tune.writeWait))
			if err := c.conn.WritePreparedMessage(m); err != nil {
				return
			}
		case <-ping.C:
			if err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(h.s.tune.writeWait)); err != nil {
				return
			}
		case <-c.gone:
			if c.goingAway.Load() {
				c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down"), time.Now().Add(time.Second))
				c.conn.Close()
			}
			return
		}
	}
}

// broadcast queues m to every client; full queues mean slow clients,
// which are dropped.
func (h *hub) broadcast(m *websocket.PreparedMessage, snapshot bool) {
	var slow []*client
	h.mu.Lock()
	if snapshot {
		h.last = m
	}
	for c := range h.clients {
		select {
		case c.send <- m:
		default:
			slow = append(slow, c)
			delete(h.clients, c)
		}
	}
	h.mu.Unlock()
	for _, c := range slow {
		h.dropped.Add(1)
		h.s.log.Warn("websocket client too slow, disconnected", "remote", c.conn.RemoteAddr().String())
		c.stop(false)
	}
}

type alertMessage struct {
	Type  string    `json:"type"` // "alert"
	Alert alertJSON `json:"alert"`
}

func (h *hub) publishAlert(a sdk.Alert) {
	if h.count() == 0 {
		return // nobody to tell; a client connecting now loads alerts over REST
	}
	b, err := json.Marshal(alertMessage{Type: "alert", Alert: toAlertJSON(a)})
	if err != nil {
		h.s.log.Error("encode alert for websocket", "error", err)
		return
	}
	m, err := websocket.NewPreparedMessage(websocket.TextMessage, b)
	if err != nil {
		return
	}
	h.broadcast(m, false)
}

// snapshot is the periodic dashboard message.
type snapshot struct {
	Type string    `json:"type"` // "snapshot"
	Time time.Time `json:"time"`
	healthView
	PacketsPerSecond float64        `json:"packets_per_second"`
	BitsPerSecond    float64        `json:"bits_per_second"`
	Active           activeResponse `json:"active"`
	Clients          int            `json:"clients"`
}

// snapshotNow builds a snapshot; rates come from the counters' change
// since the previous one, over wall-clock time (the rate the sensor
// processes, which for a replay is not the capture's own rate).
func (h *hub) snapshotNow() snapshot {
	st := h.s.cfg.Stats()
	now := h.s.now()
	snap := snapshot{Type: "snapshot", Time: now.UTC(), healthView: h.s.health(st), Active: h.s.activeView(h.s.tune.snapshotActive, false), Clients: h.count()}
	h.mu.Lock()
	if !h.prevAt.IsZero() && st.Packets >= h.prevPkts && st.Bytes >= h.prevByte {
		if dt := now.Sub(h.prevAt).Seconds(); dt > 0 {
			snap.PacketsPerSecond = float64(st.Packets-h.prevPkts) / dt
			snap.BitsPerSecond = float64(st.Bytes-h.prevByte) * 8 / dt
		}
	}
	h.prevAt, h.prevPkts, h.prevByte = now, st.Packets, st.Bytes
	h.mu.Unlock()
	return snap
}

func (h *hub) tick() {
	b, err := json.Marshal(h.snapshotNow())
	if err != nil {
		h.s.log.Error("encode snapshot", "error", err)
		return
	}
	m, err := websocket.NewPreparedMessage(websocket.TextMessage, b)
	if err != nil {
		return
	}
	h.broadcast(m, true)
}

// run snapshots every interval until ctx is done, then says goodbye to
// every client.
func (h *hub) run(ctx context.Context) error {
	h.mu.Lock()
	h.closed = false
	h.mu.Unlock()
	t := time.NewTicker(h.s.cfg.SnapshotInterval)
	defer t.Stop()
	h.tick()
	for {
		select {
		case <-ctx.Done():
			h.mu.Lock()
			h.closed = true
			all := make([]*client, 0, len(h.clients))
			for c := range h.clients {
				all = append(all, c)
			}
			h.mu.Unlock()
			for _, c := range all {
				c.stop(true)
			}
			return ctx.Err()
		case <-t.C:
			h.tick()
		}
	}
}
