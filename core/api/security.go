package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// middleware wraps every request, matched or not: panics become a bare
// 500 (the stack goes to the log), responses get hardening headers, bodies
// are refused, and each client address is rate limited.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic serving request", "path", r.URL.Path, "panic", v)
				writeJSON(w, http.StatusInternalServerError, &apiError{Message: "internal error"})
			}
		}()
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		if !s.hostAllowed(r) {
			writeJSON(w, http.StatusForbidden, &apiError{Message: fmt.Sprintf(
				"host %.60q: without api.token this sensor answers only to loopback names (localhost, 127.0.0.1, [::1]) and the hosts of api.allowed_origins", r.Host)})
			return
		}
		if !s.limits.allow(clientIP(r), s.now()) {
			h.Set("Retry-After", "1")
			writeJSON(w, http.StatusTooManyRequests, &apiError{Message: "too many requests"})
			return
		}
		// Every route is a GET: a body is never read, so none is accepted.
		if r.ContentLength > 0 {
			writeJSON(w, http.StatusRequestEntityTooLarge, &apiError{Message: "request bodies are not accepted"})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 0)
		next.ServeHTTP(w, r)
	})
}

// hostAllowed defends a server without a token against DNS rebinding: a
// page on attacker.example whose name is made to resolve to 127.0.0.1 is
// same-origin with the API in the victim's browser and could read it all,
// but its requests carry "Host: attacker.example". Without a token, only
// loopback names, loopback addresses and the hosts of the allowed origins
// are served; with one, the token is the defence (the page lacks it). A
// request without Host (HTTP/1.0) is not from a browser.
func (s *Server) hostAllowed(r *http.Request) bool {
	if s.token != nil || r.Host == "" {
		return true
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if isLoopback(host) {
		return true
	}
	for o := range s.origins {
		if u, err := url.Parse(o); err == nil && u.Hostname() == host {
			return true
		}
	}
	return false
}

// clientIP is the peer's address. Forwarding headers are not trusted: a
// client could set them to dodge its limit.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// limiter is a token bucket per client address. Idle buckets are swept so
// that a scan from many addresses cannot grow the map without bound.
type limiter struct {
	limit rate.Limit
	burst int

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	l    *rate.Limiter
	seen time.Time
}

const (
	limiterSweepEvery = time.Minute
	limiterMaxClients = 10_000
)

func newLimiter(perSecond float64, burst int) *limiter {
	return &limiter{limit: rate.Limit(perSecond), burst: burst, buckets: map[string]*bucket{}}
}

func (l *limiter) allow(ip string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > limiterSweepEvery || len(l.buckets) >= limiterMaxClients {
		// A bucket idle long enough to refill completely is the same as a new one.
		idle := time.Duration(float64(l.burst)/float64(l.limit)*float64(time.Second)) + time.Second
		for k, b := range l.buckets {
			if now.Sub(b.seen) > idle {
				delete(l.buckets, k)
			}
		}
		l.swept = now
		if len(l.buckets) >= limiterMaxClients {
			return false // still full of active clients: refuse newcomers, keep serving known ones
		}
	}
	b := l.buckets[ip]
	if b == nil {
		b = &bucket{l: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[ip] = b
	}
	b.seen = now
	return b.l.AllowN(now, 1)
}

// authMode says which credentials a route takes.
type authMode int

const (
	authPublic authMode = iota // the dashboard page and its assets
	authBearer                 // Authorization: Bearer only
	authWS                     // Bearer, or the token as a subprotocol or ?token= (browsers cannot set WebSocket headers)
)

// wsTokenProtocol prefixes a token carried in Sec-WebSocket-Protocol; the
// token is base64url (unpadded) because subprotocols are HTTP tokens.
const (
	wsProtocol      = "netguardian.v1"
	wsTokenProtocol = "netguardian.token."
)

// authorized checks the request's token in constant time (both sides are
// hashed first so that even the length does not leak).
func (s *Server) authorized(r *http.Request, mode authMode) bool {
	if s.token == nil || mode == authPublic {
		return true
	}
	for _, t := range presentedTokens(r, mode) {
		h := sha256.Sum256([]byte(t))
		if subtle.ConstantTimeCompare(h[:], s.token[:]) == 1 {
			return true
		}
	}
	return false
}

func presentedTokens(r *http.Request, mode authMode) []string {
	var out []string
	if v := r.Header.Get("Authorization"); len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		out = append(out, strings.TrimSpace(v[7:]))
	}
	if mode != authWS {
		return out
	}
	for _, p := range websocketProtocols(r) {
		if enc, ok := strings.CutPrefix(p, wsTokenProtocol); ok {
			if b, err := base64.RawURLEncoding.DecodeString(enc); err == nil {
				out = append(out, string(b))
			}
		}
	}
	if t := r.URL.Query().Get("token"); t != "" {
		out = append(out, t)
	}
	return out
}

func websocketProtocols(r *http.Request) []string {
	var out []string
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(h, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func (s *Server) unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="netguardian"`)
	writeJSON(w, http.StatusUnauthorized, &apiError{Message: "missing or invalid bearer token"})
}

// originAllowed accepts requests without an Origin (not from a browser;
// they still need the token), the API's own origin, and the configured
// ones. This is what stops another site's page from reading the feed
// through a visitor's browser.
func (s *Server) originAllowed(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(strings.ToLower(o))
	if err != nil || u.Host == "" {
		return false
	}
	if s.origins[u.Scheme+"://"+u.Host] {
		return true
	}
	return sameHost(u, strings.ToLower(r.Host))
}

// sameHost compares the origin's host:port with the request's Host,
// filling in default ports.
func sameHost(origin *url.URL, reqHost string) bool {
	def := map[string]string{"http": "80", "https": "443"}[origin.Scheme]
	port := origin.Port()
	if port == "" {
		port = def
	}
	rh, rp, err := net.SplitHostPort(reqHost)
	if err != nil {
		rh, rp = reqHost, def // a Host without a port is on the scheme's default
	}
	_, err = strconv.Atoi(port)
	return err == nil && port != "" && strings.Trim(origin.Hostname(), "[]") == strings.Trim(rh, "[]") && rp == port
}
