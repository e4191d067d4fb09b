package api

// Fuzz targets for every query parameter parser and for the whole router.
// Each asserts properties of what it accepts and rejects, not only that
// nothing panics. `go test` runs the seeds and the crashers committed in
// testdata/fuzz; `make fuzz` runs each target for FUZZTIME.

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/netguardian/netguardian/sdk"
)

// queryOf is a query with the given name/value pairs.
func queryOf(kv ...string) query {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return query{v}
}

// wantParamError checks that err is a 400 naming param, with a message.
func wantParamError(t *testing.T, err error, param string) {
	t.Helper()
	var ae *apiError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) is not an API error", err, err)
	}
	if ae.Status != http.StatusBadRequest || ae.Param != param || !strings.HasPrefix(ae.Message, param) {
		t.Fatalf("error %+v: want a 400 naming %q first", ae, param)
	}
}

// The times the fuzzers start from: the dashboard's (Date.toISOString,
// with milliseconds), the OpenAPI examples, and edges of both forms.
var timeSeeds = []string{
	"2024-05-01T10:00:00.000Z", "2024-05-01T10:00:00Z", "1893456000", "1714557600.5", "2024-05-01T12:00:00+02:00",
	"0", "253402300799", "253402300799.999999999", "1714557600.1234567891", ".5", "5.", "1.2.3", "-5", "1e9",
	"9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "1600-01-01T00:00:00Z", "2262-04-11T23:47:16.854775807Z",
	"2024-05-01T10:00:00.123456789123Z", "2024-05-01", "noon", "",
}

// unixNanos is the exact value of Unix-seconds text s (digits and one
// dot), truncated to nanoseconds; ok is false for other text.
func unixNanos(s string) (*big.Int, bool) {
	if s == "" || strings.Trim(s, "0123456789.") != "" || strings.Count(s, ".") > 1 || s == "." {
		return nil, false
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return nil, false
	}
	r.Mul(r, new(big.Rat).SetInt64(1e9))
	return new(big.Int).Quo(r.Num(), r.Denom()), true // non-negative: Quo truncates = floors
}

func timeNanos(t time.Time) *big.Int {
	n := big.NewInt(t.Unix())
	n.Mul(n, big.NewInt(1e9))
	return n.Add(n, big.NewInt(int64(t.Nanosecond())))
}

// formatUnix writes t as Unix seconds with nine decimals.
func formatUnix(t time.Time) string {
	return strconv.FormatInt(t.Unix(), 10) + "." + strconv.FormatInt(int64(t.Nanosecond())+1e9, 10)[1:]
}

// FuzzTimeParam: a time is accepted exactly when it is RFC 3339 or Unix
// seconds no later than 9999; the value is the exact instant written
// (Unix fractions to the nanosecond), clamped to what int64 nanoseconds
// hold; it is UTC and round-trips through both forms.
func FuzzTimeParam(f *testing.F) {
	for _, s := range timeSeeds {
		f.Add(s)
	}
	maxNanos := timeNanos(time.Unix(maxUnixSeconds+1, 0))
	f.Fuzz(func(t *testing.T, s string) {
		for _, name := range []string{"from", "to"} {
			got, err := queryOf(name, s).time(name)
			if s == "" {
				if err != nil || !got.IsZero() {
					t.Fatalf("empty %s: %v, %v; want absent", name, got, err)
				}
				continue
			}
			// What an independent reading says.
			var want time.Time
			valid := false
			if n, ok := unixNanos(s); ok {
				if valid = n.Cmp(maxNanos) < 0; valid {
					sec, nsec := new(big.Int).QuoRem(n, big.NewInt(1e9), new(big.Int))
					want = time.Unix(sec.Int64(), nsec.Int64()).UTC()
				}
			} else if p, perr := time.Parse(time.RFC3339Nano, s); perr == nil {
				valid, want = true, p
			}
			if !valid {
				if err == nil {
					t.Fatalf("%s=%q accepted as %v; it is neither RFC 3339 nor Unix seconds", name, s, got)
				}
				wantParamError(t, err, name)
				continue
			}
			if err != nil {
				t.Fatalf("%s=%q: %v; want %v", name, s, err, want)
			}
			if !got.Equal(clampTime(want)) || got.Location() != time.UTC {
				t.Fatalf("%s=%q = %v; want %v in UTC", name, s, got, clampTime(want))
			}
			if got.Before(earliestTime) || got.After(latestTime) || !time.Unix(0, got.UnixNano()).Equal(got) {
				t.Fatalf("%s=%q = %v: not representable in int64 nanoseconds", name, s, got)
			}
			for _, again := range []string{got.Format(time.RFC3339Nano), formatUnix(got)} {
				if got.Before(time.Unix(0, 0)) && !strings.Contains(again, "T") {
					continue // Unix seconds are never negative
				}
				back, err := queryOf(name, again).time(name)
				if err != nil || !back.Equal(got) {
					t.Fatalf("%s=%q = %v, written %q reads back as %v, %v", name, s, got, again, back, err)
				}
			}
		}
	})
}

// FuzzTimeRange: from and to are each read as alone; from after to is an
// error naming from; an accepted range is half-open [from, to).
func FuzzTimeRange(f *testing.F) {
	for i, s := range timeSeeds {
		f.Add(s, timeSeeds[(i+3)%len(timeSeeds)])
	}
	f.Add("2024-05-01T10:00:10Z", "2024-05-01T10:00:00Z")
	f.Add("1714557610", "1714557600")
	f.Add("1714557600", "2024-05-01T10:00:00Z")
	f.Fuzz(func(t *testing.T, from, to string) {
		q := queryOf("from", from, "to", to)
		rng, err := q.timeRange()
		fromT, fromErr := q.time("from")
		toT, toErr := q.time("to")
		switch {
		case fromErr != nil:
			wantParamError(t, err, "from")
		case toErr != nil:
			wantParamError(t, err, "to")
		case !fromT.IsZero() && !toT.IsZero() && fromT.After(toT):
			wantParamError(t, err, "from")
		default:
			if err != nil {
				t.Fatalf("from=%q to=%q: %v", from, to, err)
			}
			if !rng.From.Equal(fromT) || !rng.To.Equal(toT) {
				t.Fatalf("from=%q to=%q: range %v; want [%v, %v)", from, to, rng, fromT, toT)
			}
			for _, end := range []time.Time{rng.From, rng.To} {
				// How the range reaches a store plugin (sdk/wire.go).
				if !end.IsZero() && !time.Unix(0, end.UnixNano()).Equal(end) {
					t.Fatalf("from=%q to=%q: %v does not fit int64 nanoseconds", from, to, end)
				}
			}
			if !rng.To.IsZero() && rng.Contains(rng.To) {
				t.Fatalf("range %v holds its end", rng)
			}
			if !rng.From.IsZero() && (rng.To.IsZero() || rng.From.Before(rng.To)) && !rng.Contains(rng.From) {
				t.Fatalf("range %v misses its start", rng)
			}
		}
	})
}

// FuzzSrcParam: an address is accepted exactly when netip reads it
// without a zone; IPv4-mapped IPv6 becomes IPv4; the value round-trips.
func FuzzSrcParam(f *testing.F) {
	for _, s := range []string{"10.0.0.5", "10.0.0.1", "2001:db8::1", "::ffff:10.0.0.1", "fe80::1%eth0", "10.0.0", "10.0.0.256", "::1::2", "host.example", "010.0.0.1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := queryOf("src", s).addr("src")
		if s == "" {
			if err != nil || got.IsValid() {
				t.Fatalf("empty src: %v, %v; want every source", got, err)
			}
			return
		}
		want, perr := netip.ParseAddr(s)
		if perr != nil || want.Zone() != "" {
			if err == nil {
				t.Fatalf("src=%q accepted as %v", s, got)
			}
			wantParamError(t, err, "src")
			return
		}
		if err != nil || got != want.Unmap() || got.Is4In6() || got.Zone() != "" {
			t.Fatalf("src=%q = %v, %v; want %v", s, got, err, want.Unmap())
		}
		if back, err := netip.ParseAddr(got.String()); err != nil || back != got {
			t.Fatalf("src=%q = %v, written %q reads back as %v, %v", s, got, got.String(), back, err)
		}
	})
}

// FuzzLimitParam: for each endpoint's bounds, a limit is accepted exactly
// when it is a whole number in [1, max], and its value is that number.
func FuzzLimitParam(f *testing.F) {
	for _, s := range []string{"10", "720", "100", "1000", "10000", "50", "20", "1", "0", "-1", "+5", "007", "10001", "ten", "1e3", "9223372036854775808", ""} {
		f.Add(s)
	}
	bounds := [][2]int{{defaultFeatureLimit, maxFeatureLimit}, {defaultTopLimit, maxTopLimit}, {defaultAlertLimit, maxAlertLimit}, {defaultActiveLimit, maxActiveLimit}}
	f.Fuzz(func(t *testing.T, s string) {
		for _, b := range bounds {
			def, hi := b[0], b[1]
			got, err := queryOf("limit", s).limit(def, hi)
			if s == "" {
				if err != nil || got != def {
					t.Fatalf("no limit: %d, %v; want the default %d", got, err, def)
				}
				continue
			}
			n, ok := new(big.Int).SetString(s, 10)
			if !ok || n.Cmp(big.NewInt(1)) < 0 || n.Cmp(big.NewInt(int64(hi))) > 0 {
				if err == nil {
					t.Fatalf("limit=%q accepted as %d (bounds 1..%d)", s, got, hi)
				}
				wantParamError(t, err, "limit")
				if !strings.Contains(err.Error(), strconv.Itoa(hi)) {
					t.Fatalf("error %q does not give the maximum %d", err, hi)
				}
				continue
			}
			if err != nil || int64(got) != n.Int64() {
				t.Fatalf("limit=%q = %d, %v; want %d", s, got, err, n)
			}
		}
	})
}

// FuzzChoiceParams: window, by and severity accept exactly their listed
// values (case matters), and the value read writes back as the text.
func FuzzChoiceParams(f *testing.F) {
	for _, s := range []string{"5s", "30s", "180s", "3m0s", "5", "bytes", "packets", "flows", "low", "medium", "high", "critical", "HIGH", "urgent", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w, err := queryOf("window", s).window()
		switch {
		case s == "":
			if err != nil || w != 5*time.Second {
				t.Fatalf("no window: %v, %v; want 5s", w, err)
			}
		case slices.Contains([]string{"5s", "30s", "180s"}, s):
			if err != nil || fmtWindow(w) != s || !slices.Contains(sdk.WindowSizes, w) {
				t.Fatalf("window=%q = %v, %v", s, w, err)
			}
		default:
			if err == nil {
				t.Fatalf("window=%q accepted as %v", s, w)
			}
			wantParamError(t, err, "window")
		}

		by, err := queryOf("by", s).enum("by", "bytes", "bytes", "packets")
		switch {
		case s == "":
			if err != nil || by != "bytes" {
				t.Fatalf("no by: %q, %v; want bytes", by, err)
			}
		case s == "bytes" || s == "packets":
			if err != nil || by != s {
				t.Fatalf("by=%q = %q, %v", s, by, err)
			}
		default:
			if err == nil {
				t.Fatalf("by=%q accepted as %q", s, by)
			}
			wantParamError(t, err, "by")
		}

		// getAlerts reads severity with sdk.ParseSeverity.
		sev, ok := sdk.ParseSeverity(s)
		if want := slices.Contains([]string{"low", "medium", "high", "critical"}, s); ok != want || (ok && string(sev) != s) {
			t.Fatalf("severity %q = %q, %v", s, sev, ok)
		}
	})
}

// FuzzTextParam: label and cursor pass through unchanged up to their
// bound, and past it are an error naming them.
func FuzzTextParam(f *testing.F) {
	for _, s := range []string{"portscan", "dos", "", strings.Repeat("x", maxTextParam), strings.Repeat("é", maxTextParam/2+1), "\x00\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, name := range []string{"label", "cursor"} {
			got, err := queryOf(name, s).text(name)
			if len(s) > maxTextParam {
				if err == nil {
					t.Fatalf("%s of %d bytes accepted", name, len(s))
				}
				wantParamError(t, err, name)
				continue
			}
			if err != nil || got != s {
				t.Fatalf("%s=%q = %q, %v", name, s, got, err)
			}
		}
	})
}

// fuzzServer is a server over the fixtures of helpers_test.go, with rate
// limits no fuzzer reaches and a silent log. The fuzz functions serve
// through its handler directly: no sockets, many executions per second.
func fuzzServer(tb testing.TB) *Server {
	tb.Helper()
	s, err := newServer(Config{Listen: "127.0.0.1:0", Store: newFixtureStore(tb), Stats: newStatsFeed().Stats, Plugins: fixturePlugins,
		Log: slog.New(slog.DiscardHandler), RateLimit: 1e12, RateBurst: 1 << 30}, defaultTuning())
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func serve(s *Server, path, rawQuery string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Host = "127.0.0.1:5000" // httptest's example.com is not a host a loopback server answers
	req.URL.RawQuery = rawQuery // set, not parsed: the fuzzer's bytes reach the router as they are
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	return rec
}

// fuzzPaths are the routes with query parameters, and the JSON ones
// without (which must name the parameter they do not take).
var fuzzPaths = []string{"/api/features", "/api/protocols", "/api/top-sources", "/api/alerts", "/api/alerts/active", "/api/health", "/api/plugins", "/api/openapi.json"}

// handlerSeeds are the queries the dashboard sends (web/src/main.ts), one
// per route with the OpenAPI examples of its parameters, and malformed ones.
func handlerSeeds(tb testing.TB, s *Server) map[string][]string {
	var doc oaDoc
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		tb.Fatal(err)
	}
	alerts := serve(s, "/api/alerts", "limit=5")
	var page struct {
		NextCursor string `json:"next_cursor"`
	}
	if err := json.Unmarshal(alerts.Body.Bytes(), &page); err != nil || page.NextCursor == "" {
		tb.Fatalf("fixture alerts: %v, %s", err, alerts.Body)
	}
	const from = "2024-05-01T09:55:00.000Z"
	seeds := map[string][]string{
		"/api/protocols":     {"from=" + from, ""},
		"/api/top-sources":   {"by=bytes&from=" + from + "&limit=10", "by=packets&limit=10"},
		"/api/features":      {"window=5s&src=10.0.0.1&from=" + from + "&limit=720", "window=30s&src=2001%3Adb8%3A%3A1"},
		"/api/alerts":        {"src=10.0.0.2&from=" + from + "&limit=100", "limit=100&cursor=" + page.NextCursor, "severity=high&label=portscan&limit=2"},
		"/api/alerts/active": {"limit=10"},
		"/api/health":        {""},
	}
	for path, ops := range doc.Paths {
		if !slices.Contains(fuzzPaths, path) {
			continue
		}
		v := url.Values{}
		for _, p := range ops["get"].Parameters {
			if p.Ref != "" {
				p = doc.Components.Parameters[strings.TrimPrefix(p.Ref, "#/components/parameters/")]
			}
			if p.In == "query" && p.Example != nil {
				v.Set(p.Name, strings.Trim(string(must(json.Marshal(p.Example))), `"`))
			}
		}
		seeds[path] = append(seeds[path], v.Encode(), "label=%zz", "a;b=1", "limit=1&limit=2", "x=1")
	}
	return seeds
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// paramNames are the names a 400 may give for rawQuery: each pair's key,
// as url.QueryUnescape reads it or raw when it cannot, as JSON carries it.
func paramNames(rawQuery string) []string {
	var out []string
	for pair := range strings.SplitSeq(rawQuery, "&") {
		key, _, _ := strings.Cut(pair, "=")
		if k, err := url.QueryUnescape(key); err == nil {
			key = k
		}
		var viaJSON string
		json.Unmarshal(must(json.Marshal(key)), &viaJSON)
		out = append(out, viaJSON)
	}
	return out
}

// FuzzHandler drives the real router over the memory store with fuzzed
// query strings: the answer is 200 with a body that honours the
// parameters, or 400 with a JSON error naming one of the parameters sent;
// never a 5xx, never a panic.
func FuzzHandler(f *testing.F) {
	s := fuzzServer(f)
	seeds := handlerSeeds(f, s)
	for i, path := range fuzzPaths {
		for _, q := range seeds[path] {
			f.Add(uint8(i), q)
		}
	}
	f.Fuzz(func(t *testing.T, route uint8, rawQuery string) {
		path := fuzzPaths[int(route)%len(fuzzPaths)]
		rec := serve(s, path, rawQuery)
		body := rec.Body.Bytes()
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Fatalf("%s?%s: %d with content type %q", path, rawQuery, rec.Code, ct)
		}
		switch rec.Code {
		case http.StatusOK:
			v, _ := url.ParseQuery(rawQuery)
			checkOK(t, path, v, body)
		case http.StatusBadRequest:
			var e struct {
				Error     string  `json:"error"`
				Parameter *string `json:"parameter"`
			}
			if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
				t.Fatalf("%s?%s: 400 body %s (%v)", path, rawQuery, body, err)
			}
			name := ""
			if e.Parameter != nil {
				name = *e.Parameter
			}
			if !slices.Contains(paramNames(rawQuery), name) {
				t.Fatalf("%s?%s: 400 names %q, which was not sent: %s", path, rawQuery, name, body)
			}
		default:
			t.Fatalf("%s?%s: status %d: %s", path, rawQuery, rec.Code, body)
		}
	})
}

// queryTime reads a time parameter as the handler does (already accepted).
func queryTime(v url.Values, name string) time.Time {
	t, _ := query{v}.time(name)
	return t
}

func limitOr(v url.Values, def int) int {
	if n, err := strconv.Atoi(v.Get("limit")); err == nil {
		return n
	}
	return def
}

// checkOK checks a 200 body against the parameters that produced it.
func checkOK(t *testing.T, path string, v url.Values, body []byte) {
	t.Helper()
	if !json.Valid(body) {
		t.Fatalf("%s: invalid JSON %s", path, body)
	}
	rng := sdk.TimeRange{From: queryTime(v, "from"), To: queryTime(v, "to")}
	var src netip.Addr
	if s := v.Get("src"); s != "" {
		src = netip.MustParseAddr(s).Unmap()
	}
	switch path {
	case "/api/features":
		var r struct {
			Window string `json:"window"`
			Rows   []struct {
				Src   string    `json:"src"`
				Start time.Time `json:"start"`
			} `json:"rows"`
		}
		must(0, json.Unmarshal(body, &r))
		if want := cmpOr(v.Get("window"), "5s"); r.Window != want {
			t.Fatalf("features window %q; asked %q", r.Window, want)
		}
		if len(r.Rows) > limitOr(v, defaultFeatureLimit) {
			t.Fatalf("features: %d rows past limit %q", len(r.Rows), v.Get("limit"))
		}
		for i, row := range r.Rows {
			if (src.IsValid() && row.Src != src.String()) || !rng.Contains(row.Start) || (i > 0 && row.Start.Before(r.Rows[i-1].Start)) {
				t.Fatalf("features row %d (%s at %v) out of order or outside src=%v %v", i, row.Src, row.Start, src, rng)
			}
		}
	case "/api/alerts":
		var r struct {
			Alerts []struct {
				ID       string    `json:"id"`
				Src      string    `json:"src"`
				Label    string    `json:"label"`
				Severity string    `json:"severity"`
				End      time.Time `json:"end"`
				Time     time.Time `json:"time"`
			} `json:"alerts"`
			NextCursor string `json:"next_cursor"`
		}
		must(0, json.Unmarshal(body, &r))
		if len(r.Alerts) > limitOr(v, defaultAlertLimit) {
			t.Fatalf("alerts: %d past limit %q", len(r.Alerts), v.Get("limit"))
		}
		for i, a := range r.Alerts {
			if (src.IsValid() && a.Src != src.String()) || (v.Get("label") != "" && a.Label != v.Get("label")) ||
				(v.Get("severity") != "" && a.Severity != v.Get("severity")) || !rng.Contains(a.End) ||
				(i > 0 && a.Time.After(r.Alerts[i-1].Time)) {
				t.Fatalf("alert %d (%+v) out of order or outside the filters %v", i, a, v)
			}
		}
		if c := v.Get("cursor"); c != "" && len(r.Alerts) > 0 {
			key, ok := decodeMemoryCursor(c)
			if !ok {
				t.Fatalf("cursor %q accepted but not one the memory store issues", c)
			}
			if first := r.Alerts[0]; cmpKey(first.Time.UnixNano(), first.ID, key) >= 0 {
				t.Fatalf("cursor %q: alert %s at %v is not older than the cursor", c, first.ID, first.Time)
			}
		}
	case "/api/top-sources":
		var r struct {
			By      string `json:"by"`
			Sources []struct {
				Packets uint64 `json:"packets"`
				Bytes   uint64 `json:"bytes"`
			} `json:"sources"`
		}
		must(0, json.Unmarshal(body, &r))
		if r.By != cmpOr(v.Get("by"), "bytes") || len(r.Sources) > limitOr(v, defaultTopLimit) {
			t.Fatalf("top sources by %q, %d of them; asked %v", r.By, len(r.Sources), v)
		}
		for i := 1; i < len(r.Sources); i++ {
			prev, cur := r.Sources[i-1], r.Sources[i]
			if (r.By == "bytes" && cur.Bytes > prev.Bytes) || (r.By == "packets" && cur.Packets > prev.Packets) {
				t.Fatalf("top sources not ranked by %s at %d", r.By, i)
			}
		}
	case "/api/protocols":
		var r struct {
			Protocols []struct {
				Protocol string `json:"protocol"`
			} `json:"protocols"`
		}
		must(0, json.Unmarshal(body, &r))
		var got []string
		for _, p := range r.Protocols {
			got = append(got, p.Protocol)
		}
		if !slices.Equal(got, []string{"tcp", "udp", "icmp", "other"}) {
			t.Fatalf("protocols %v", got)
		}
	case "/api/alerts/active":
		var r struct {
			Alerts []json.RawMessage `json:"alerts"`
		}
		must(0, json.Unmarshal(body, &r))
		if len(r.Alerts) > limitOr(v, defaultActiveLimit) {
			t.Fatalf("active: %d past limit %q", len(r.Alerts), v.Get("limit"))
		}
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// cursorKey is the memory store's pagination key, as its cursors carry
// it (core/store/alerts.go): base64url of version 1, the alert time in
// Unix nanoseconds (8 bytes, big endian) and the alert ID. It is decoded
// here independently of the store, to check what the API accepts.
type cursorKey struct {
	time int64
	id   string
}

func decodeMemoryCursor(s string) (cursorKey, bool) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) < 10 || b[0] != 1 || !utf8.Valid(b[9:]) {
		return cursorKey{}, false
	}
	return cursorKey{int64(binary.BigEndian.Uint64(b[1:9])), string(b[9:])}, true
}

func encodeMemoryCursor(k cursorKey) string {
	b := binary.BigEndian.AppendUint64([]byte{1}, uint64(k.time))
	return base64.RawURLEncoding.EncodeToString(append(b, k.id...))
}

func cmpKey(t int64, id string, k cursorKey) int {
	if t != k.time {
		if t < k.time {
			return -1
		}
		return 1
	}
	return strings.Compare(id, k.id)
}

// FuzzAlertsCursor pages /api/alerts from fuzzed cursors. A cursor is
// accepted exactly when it decodes, and then re-encodes to the very same
// text (no two spellings of one position); the page is the alerts just
// older than its key, and next_cursor is the key of the page's last alert.
// Anything else is a 400 naming cursor.
func FuzzAlertsCursor(f *testing.F) {
	s := fuzzServer(f)
	type alertKey struct {
		ID   string    `json:"id"`
		Time time.Time `json:"time"`
	}
	var all struct {
		Alerts []alertKey `json:"alerts"`
	}
	must(0, json.Unmarshal(serve(s, "/api/alerts", "limit=1000").Body.Bytes(), &all))
	if len(all.Alerts) != fixtureAlerts {
		f.Fatalf("fixture holds %d alerts", len(all.Alerts))
	}
	for _, a := range all.Alerts[:5] {
		c := encodeMemoryCursor(cursorKey{a.Time.UnixNano(), a.ID})
		f.Add(c)
		f.Add(c + "\n")
		f.Add(c[:len(c)-1])
	}
	for _, c := range []string{"", "AQ", "!!!", "AQAAAAAAAAAAeA", "cAAAAAAAAAAAeA"} {
		f.Add(c)
	}
	const pageSize = 3
	f.Fuzz(func(t *testing.T, cursor string) {
		rec := serve(s, "/api/alerts", "limit="+strconv.Itoa(pageSize)+"&cursor="+url.QueryEscape(cursor))
		key, decodes := decodeMemoryCursor(cursor)
		valid := cursor == "" || (decodes && len(cursor) <= maxTextParam && encodeMemoryCursor(key) == cursor)
		if !valid {
			var e apiError
			if rec.Code != http.StatusBadRequest || json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Param != "cursor" {
				t.Fatalf("cursor %q: %d %s; want a 400 naming cursor", cursor, rec.Code, rec.Body)
			}
			return
		}
		if rec.Code != http.StatusOK {
			t.Fatalf("cursor %q: %d %s", cursor, rec.Code, rec.Body)
		}
		var page struct {
			Alerts []struct {
				ID string `json:"id"`
			} `json:"alerts"`
			NextCursor string `json:"next_cursor"`
		}
		must(0, json.Unmarshal(rec.Body.Bytes(), &page))
		var want []string
		for _, a := range all.Alerts {
			if cursor == "" || cmpKey(a.Time.UnixNano(), a.ID, key) < 0 {
				want = append(want, a.ID)
			}
		}
		more := len(want) > pageSize
		want = want[:min(len(want), pageSize)]
		var got []string
		for _, a := range page.Alerts {
			got = append(got, a.ID)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("cursor %q: page %v; want %v", cursor, got, want)
		}
		if more != (page.NextCursor != "") {
			t.Fatalf("cursor %q: next_cursor %q with %d older alerts", cursor, page.NextCursor, len(want))
		}
		if more {
			last := all.Alerts[slices.IndexFunc(all.Alerts, func(a alertKey) bool { return a.ID == want[len(want)-1] })]
			if next, ok := decodeMemoryCursor(page.NextCursor); !ok || next != (cursorKey{last.Time.UnixNano(), last.ID}) || encodeMemoryCursor(next) != page.NextCursor {
				t.Fatalf("cursor %q: next_cursor %q is not the key of %s", cursor, page.NextCursor, last.ID)
			}
		}
	})
}
