package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/netguardian/netguardian/sdk"
)

// endpoint is one route: its path, the query parameters it accepts, its
// authentication and its handler. The router holds endpoints themselves,
// so a test walking the router sees exactly what is served.
type endpoint struct {
	s      *Server
	path   string
	params []string
	auth   authMode
	// lenient routes ignore parameters they do not take: a link to the
	// dashboard may carry tracking parameters, a scraper its own.
	lenient bool
	// json handlers return a value to encode; raw ones write the response.
	json func(r *http.Request, q query) (any, error)
	raw  http.Handler
}

func (s *Server) routes() *mux.Router {
	r := mux.NewRouter()
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotFound, &apiError{Message: "not found"})
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Allow", "GET, HEAD")
		writeJSON(w, http.StatusMethodNotAllowed, &apiError{Message: "method not allowed"})
	})
	metrics := promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	for _, e := range []*endpoint{
		{path: "/", auth: authPublic, lenient: true, raw: http.HandlerFunc(s.serveIndex)},
		{path: "/assets/{file}", auth: authPublic, lenient: true, raw: http.HandlerFunc(s.serveAsset)},
		{path: "/api/features", params: []string{"window", "src", "from", "to", "limit"}, auth: authBearer, json: s.getFeatures},
		{path: "/api/protocols", params: []string{"from", "to"}, auth: authBearer, json: s.getProtocols},
		{path: "/api/top-sources", params: []string{"by", "from", "to", "limit"}, auth: authBearer, json: s.getTopSources},
		{path: "/api/alerts", params: []string{"severity", "label", "src", "from", "to", "limit", "cursor"}, auth: authBearer, json: s.getAlerts},
		{path: "/api/alerts/active", params: []string{"limit"}, auth: authBearer, json: s.getActive},
		{path: "/api/health", auth: authBearer, json: s.getHealth},
		{path: "/api/plugins", auth: authBearer, json: s.getPlugins},
		{path: "/api/openapi.json", auth: authBearer, raw: http.HandlerFunc(serveOpenAPI)},
		{path: "/metrics", auth: authBearer, lenient: true, raw: metrics},
		{path: "/ws/dashboard", params: []string{"token"}, auth: authWS, raw: http.HandlerFunc(s.serveWS)},
	} {
		e.s = s
		r.Handle(e.path, e).Methods(http.MethodGet, http.MethodHead)
	}
	return r
}

func (e *endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Authentication first, so that an unauthenticated client learns
	// nothing from parameter errors.
	if !e.s.authorized(r, e.auth) {
		e.s.unauthorized(w)
		return
	}
	if e.auth != authPublic {
		w.Header().Set("Cache-Control", "no-store")
	}
	v, perr := parseQuery(r.URL.RawQuery)
	if perr != nil && !e.lenient {
		// Query() would silently drop the broken pair; say so instead.
		writeJSON(w, http.StatusBadRequest, perr)
		return
	}
	if !e.lenient {
		for name, vals := range v {
			if !slices.Contains(e.params, name) {
				writeJSON(w, http.StatusBadRequest, badParam(name, "unknown parameter %.40q (this endpoint takes: %s)", name, paramList(e.params)))
				return
			}
			if len(vals) > 1 {
				writeJSON(w, http.StatusBadRequest, badParam(name, "parameter %s is repeated", name))
				return
			}
		}
	}
	if e.raw != nil {
		e.raw.ServeHTTP(w, r)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), e.s.tune.queryTimeout)
	defer cancel()
	out, err := e.json(r.WithContext(ctx), query{v})
	if err != nil {
		e.s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func paramList(p []string) string {
	if len(p) == 0 {
		return "none"
	}
	return strings.Join(p, ", ")
}

// storeError marks a failure of the store, which the client sees as 503.
type storeError struct{ err error }

func (e storeError) Error() string { return "store: " + e.err.Error() }
func (e storeError) Unwrap() error { return e.err }

// fromStore classifies a store error: a bad cursor is the client's fault,
// anything else the store's.
func fromStore(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sdk.ErrBadCursor) {
		return badParam("cursor", "cursor: not one this server issued")
	}
	return storeError{err}
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		writeJSON(w, ae.Status, ae)
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody reads this answer.
		s.log.Debug("request canceled", "path", r.URL.Path)
		writeJSON(w, http.StatusServiceUnavailable, &apiError{Message: "request canceled"})
	default:
		// The cause (SQL, addresses, stacks) stays in the log.
		s.log.Error("query failed", "path", r.URL.Path, "error", err)
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, &apiError{Message: "the store is unavailable; try again later"})
	}
}

// writeJSON encodes v; encoding happens before the header is written so a
// failure is still a clean error response.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(true)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		b.Reset()
		b.WriteString(`{"error":"internal error"}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}
