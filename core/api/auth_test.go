package api

import (
	"context"
	"encoding/base64"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/netguardian/netguardian/core/store"
)

func TestNonLoopbackNeedsToken(t *testing.T) {
	mem := store.NewMemory(store.Options{})
	for _, c := range []struct {
		listen, token string
		ok            bool
	}{
		{"", "", true}, // the default, 127.0.0.1:5000
		{"127.0.0.1:5000", "", true},
		{"127.10.0.1:5000", "", true},
		{"localhost:5000", "", true},
		{"[::1]:5000", "", true},
		{"0.0.0.0:5000", "", false},
		{":5000", "", false},
		{"[::]:5000", "", false},
		{"192.0.2.10:5000", "", false},
		{"sensor.example:5000", "", false},
		{"0.0.0.0:5000", "s3cret", true},
		{"sensor.example:5000", "s3cret", true},
	} {
		_, err := New(Config{Listen: c.listen, Token: c.token, Store: mem})
		if c.ok && err != nil {
			t.Errorf("listen %q token %q: %v", c.listen, c.token, err)
		}
		if !c.ok && (err == nil || !strings.Contains(err.Error(), "without a token") || !strings.Contains(err.Error(), "api.token")) {
			t.Errorf("listen %q without a token: err %v, want a refusal naming api.token", c.listen, err)
		}
	}
	if _, err := New(Config{Listen: "nonsense", Store: mem}); err == nil {
		t.Error("a listen address without a port was accepted")
	}
	if _, err := New(Config{}); err == nil {
		t.Error("a server without a store was accepted")
	}
	if _, err := New(Config{Store: mem, AllowedOrigins: []string{"https://noc.example.com/path"}}); err == nil {
		t.Error("an origin with a path was accepted")
	}
}

// TestServeRefusesWildcardWithoutToken: even past New, a listener on every
// interface is refused without a token. Binding 0.0.0.0 sends no traffic.
func TestServeRefusesWildcardWithoutToken(t *testing.T) {
	s, err := New(Config{Store: store.NewMemory(store.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Skipf("cannot bind 0.0.0.0 here: %v", err)
	}
	err = s.ServeListener(context.Background(), ln)
	if err == nil || !strings.Contains(err.Error(), "without a token") {
		t.Fatalf("ServeListener on %s: %v", ln.Addr(), err)
	}
	if _, err := ln.Accept(); err == nil {
		t.Fatal("the refused listener was left open")
	}
}

func TestTokenRequired(t *testing.T) {
	const token = "correct horse battery staple"
	f := newFixture(t, func(c *Config, _ *tuning) { c.Listen = "0.0.0.0:5000"; c.Token = token })

	for _, path := range []string{"/api/features", "/api/alerts", "/api/health", "/api/plugins", "/api/openapi.json", "/metrics"} {
		code, h, body := f.get(t, path)
		if code != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") || !strings.Contains(string(body), `"error"`) {
			t.Errorf("%s without a token: %d %s", path, code, body)
		}
		if code, _, _ := f.get(t, path, "Authorization", "Bearer wrong"); code != http.StatusUnauthorized {
			t.Errorf("%s with a wrong token: %d", path, code)
		}
		if code, _, _ := f.get(t, path, "Authorization", "Bearer "+token[:len(token)-1]); code != http.StatusUnauthorized {
			t.Errorf("%s with a prefix of the token: %d", path, code)
		}
		if code, _, body := f.get(t, path, "Authorization", "Bearer "+token); code != http.StatusOK {
			t.Errorf("%s with the token: %d %s", path, code, body)
		}
	}
	// REST does not take the WebSocket-only forms: a token in the URL
	// would end up in logs and browser history.
	if code, _, _ := f.get(t, "/api/health?token="+strings.ReplaceAll(token, " ", "+")); code != http.StatusUnauthorized {
		t.Errorf("REST with ?token=: %d, want 401", code)
	}
	// Unauthenticated clients learn nothing from parameter checks.
	if code, _, _ := f.get(t, "/api/features?window=bogus"); code != http.StatusUnauthorized {
		t.Errorf("bad parameter without a token: %d, want 401", code)
	}
	// The page itself is public: it asks for the token.
	if code, _, _ := f.get(t, "/"); code != http.StatusOK {
		t.Errorf("dashboard page: %d", code)
	}
	if code, _, _ := f.get(t, "/assets/app.js"); code != http.StatusOK {
		t.Errorf("dashboard script: %d", code)
	}

	// WebSocket: refused without the token, accepted with it in any of the
	// three forms; the token subprotocol is never echoed.
	dial := func(url string, h http.Header, protocols ...string) (*websocket.Conn, int, error) {
		d := websocket.Dialer{HandshakeTimeout: 30 * time.Second, Subprotocols: protocols}
		conn, res, err := d.Dial(url, h)
		code := 0
		if res != nil {
			code = res.StatusCode
		}
		return conn, code, err
	}
	if _, code, err := dial(wsURL(f), nil); err == nil || code != http.StatusUnauthorized {
		t.Fatalf("WebSocket without a token: %v, status %d", err, code)
	}
	if _, code, err := dial(wsURL(f), nil, wsProtocol, wsTokenProtocol+base64.RawURLEncoding.EncodeToString([]byte("wrong"))); err == nil || code != http.StatusUnauthorized {
		t.Fatalf("WebSocket with a wrong token: %v, status %d", err, code)
	}
	tokenProto := wsTokenProtocol + base64.RawURLEncoding.EncodeToString([]byte(token))
	for name, try := range map[string]func() (*websocket.Conn, int, error){
		"subprotocol": func() (*websocket.Conn, int, error) { return dial(wsURL(f), nil, wsProtocol, tokenProto) },
		"query": func() (*websocket.Conn, int, error) {
			return dial(wsURL(f)+"?token="+strings.ReplaceAll(token, " ", "%20"), nil)
		},
		"header": func() (*websocket.Conn, int, error) {
			return dial(wsURL(f), http.Header{"Authorization": {"Bearer " + token}})
		},
	} {
		conn, code, err := try()
		if err != nil {
			t.Fatalf("WebSocket with the token as %s: %v, status %d", name, err, code)
		}
		if name == "subprotocol" && conn.Subprotocol() != wsProtocol {
			t.Errorf("selected subprotocol %q, want %q", conn.Subprotocol(), wsProtocol)
		}
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		var s snapshot
		if err := conn.ReadJSON(&s); err != nil || s.Type != "snapshot" {
			t.Errorf("first message with the token as %s: %v %q", name, err, s.Type)
		}
		conn.Close()
	}
}

func TestServeAndShutdown(t *testing.T) {
	s, err := New(Config{Store: newFixtureStore(t), Log: testLog(t), SnapshotInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ServeListener(ctx, ln) }()
	base := "http://" + ln.Addr().String()
	res, err := http.Get(base + "/api/health")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("health: %d", res.StatusCode)
	}
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+ln.Addr().String()+"/ws/dashboard", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := s.Run(context.Background()); err == nil {
		t.Fatal("a second Run while Serve runs was allowed")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve returned %v after shutdown", err)
	}
	// The client gets a going-away close frame, after any snapshots.
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		_, _, err := conn.ReadMessage()
		if err == nil {
			continue
		}
		if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
			t.Fatalf("client read %v, want a going-away close", err)
		}
		break
	}
	if _, err := http.Get(base + "/api/health"); err == nil {
		t.Fatal("server still answers after shutdown")
	}
}
