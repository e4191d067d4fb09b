// Package api serves the sensor's REST API, the dashboard WebSocket, the
// Prometheus metrics and the embedded browser dashboard.
//
// The package depends on small things it is given (see Config): an
// sdk.Store for history, a function returning pipeline.Stats for live
// counters, a function listing what each plugin described, and alerts
// pushed through PublishAlert. It never reaches into the pipeline itself.
//
// # Routes
//
//	GET /                      the dashboard (public: it holds no data)
//	GET /assets/{file}         the dashboard's script and style (public)
//	GET /api/features          window, src, from, to, limit
//	GET /api/protocols         from, to
//	GET /api/top-sources       by (bytes|packets), from, to, limit
//	GET /api/alerts            severity, label, src, from, to, limit, cursor
//	GET /api/alerts/active     limit
//	GET /api/health            overall status, plugins, queues, drops
//	GET /api/plugins           what each plugin's Describe returned
//	GET /api/openapi.json      the OpenAPI 3 description of all of this
//	GET /metrics               Prometheus text format
//	GET /ws/dashboard          WebSocket: snapshots and alerts
//
// The OpenAPI document (openapi.json, served at /api/openapi.json) is the
// reference for every parameter and response; a test keeps it and the
// router in step.
//
// # Parameters
//
// Times (from, to) are RFC 3339 ("2024-05-01T10:00:00Z", fractions
// allowed) or Unix seconds ("1714557600", decimals allowed). Ranges are
// half-open [from, to). An empty value is the same as an absent parameter.
// A parameter the endpoint does not know, a repeated parameter, or a value
// that does not parse is answered 400 with {"error": "...", "parameter":
// "name"}; a store failure is 503 with a generic message (the cause goes to
// the log, never to the client). Unknown paths are 404, other methods 405,
// both with a JSON body.
//
// # Security
//
// The server listens on 127.0.0.1:5000 by default. New and Serve refuse a
// non-loopback address unless a token is set. With a token, every /api/*
// route, /metrics and /ws/dashboard require "Authorization: Bearer TOKEN";
// /metrics is protected too because its labels name plugins and queues
// (Prometheus: authorization { credentials = "TOKEN" }). Browsers cannot
// set headers on a WebSocket, so /ws/dashboard alone also accepts the token
// as a Sec-WebSocket-Protocol entry "netguardian.token.BASE64URL(TOKEN)"
// (offered next to "netguardian.v1", which the server selects) or as a
// ?token= query parameter (which may end up in proxy logs: prefer the
// subprotocol). Tokens are compared in constant time. The dashboard page and
// its assets are public so that the page can ask for the token.
//
// Every client address has a token-bucket rate limit (429 past it). Request
// bodies are refused, headers are capped, and WebSocket origins must be the
// API's own or one of api.allowed_origins.
//
// # Active alerts
//
// The dashboard's "active" alerts are the newest alert per (source, label)
// whose window ended within ActiveFor of the sensor's present. The present
// is packet time, not wall clock, so that replaying an old capture shows
// its alerts: it is the newest packet timestamp given to ObservePackets,
// or the newest alert window end given to PublishAlert, whichever is later.
// The set lives here (active.go) because the API is its only reader.
package api
