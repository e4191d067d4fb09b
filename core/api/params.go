package api

import (
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/netguardian/netguardian/sdk"
)

// apiError is an error with the status and body the client sees.
type apiError struct {
	Status  int    `json:"-"`
	Message string `json:"error"`
	Param   string `json:"parameter,omitempty"`
}

func (e *apiError) Error() string { return e.Message }

func badParam(name, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...), Param: name}
}

// maxTextParam bounds free-text parameters (label, cursor), which go
// straight to the store.
const maxTextParam = 512

// parseQuery is url.ParseQuery with an error that names the pair it could
// not read (a bad %-escape, a semicolon), so that even a broken query
// string is answered with the parameter at fault. The values it could
// read are returned either way, for routes that ignore the error.
func parseQuery(raw string) (url.Values, *apiError) {
	v, err := url.ParseQuery(raw)
	if err == nil {
		return v, nil
	}
	for pair := range strings.SplitSeq(raw, "&") {
		if _, perr := url.ParseQuery(pair); perr != nil {
			key, _, _ := strings.Cut(pair, "=")
			if k, kerr := url.QueryUnescape(key); kerr == nil {
				key = k
			}
			return v, badParam(key, "%.40q: malformed query string: %v", key, perr)
		}
	}
	return v, badParam("", "malformed query string: %v", err) // unreachable: some pair failed
}

// query reads an endpoint's parameters. The endpoint has already rejected
// unknown and repeated names, so Get is unambiguous.
type query struct{ v url.Values }

func (q query) get(name string) string { return q.v.Get(name) }

// text returns a free-text parameter, bounded in length.
func (q query) text(name string) (string, error) {
	s := q.get(name)
	if len(s) > maxTextParam {
		return "", badParam(name, "%s is longer than %d bytes", name, maxTextParam)
	}
	return s, nil
}

// maxUnixSeconds is 9999-12-31T23:59:59Z, the last second RFC 3339 can write.
const maxUnixSeconds = 253402300799

// parseTime reads RFC 3339 or Unix seconds. Unix seconds may have a
// decimal fraction, read exactly to the nanosecond (further digits are
// cut, as time.Parse cuts RFC 3339 fractions); a float64 would be off by
// up to 120 ns for present-day times.
func parseTime(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	if strings.Trim(s, "0123456789.") == "" {
		return parseUnixSeconds(s)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// parseUnixSeconds reads digits with at most one decimal point ("5.",
// ".5" and "5.5" are all fine).
func parseUnixSeconds(s string) (time.Time, bool) {
	whole, frac, _ := strings.Cut(s, ".")
	if (whole == "" && frac == "") || strings.Contains(frac, ".") {
		return time.Time{}, false
	}
	var sec, nsec int64
	if whole != "" {
		var err error
		if sec, err = strconv.ParseInt(whole, 10, 64); err != nil || sec > maxUnixSeconds {
			return time.Time{}, false
		}
	}
	if frac != "" {
		nsec, _ = strconv.ParseInt((frac + "000000000")[:9], 10, 64) // nine digits: cannot fail
	}
	return time.Unix(sec, nsec).UTC(), true
}

// Stored times are int64 nanoseconds since the epoch, which is also how
// a range reaches a store plugin, so nothing lies outside these bounds.
var (
	earliestTime = time.Unix(0, math.MinInt64).UTC() // 1677-09-21
	latestTime   = time.Unix(0, math.MaxInt64).UTC() // 2262-04-11
)

// clampTime brings t within [earliestTime, latestTime]: a bound beyond
// them selects the same rows as the span's end, and would otherwise
// overflow (to=3000-01-01 became a date in 1830 on its way to the
// PostgreSQL sink).
func clampTime(t time.Time) time.Time {
	if t.Before(earliestTime) {
		return earliestTime
	}
	if t.After(latestTime) {
		return latestTime
	}
	return t
}

func (q query) time(name string) (time.Time, error) {
	s := q.get(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, ok := parseTime(s)
	if !ok {
		return time.Time{}, badParam(name, "%s: %.40q is neither an RFC 3339 time nor Unix seconds", name, s)
	}
	return clampTime(t), nil
}

// timeRange reads from and to; from after to is an error (equal ends are
// an empty range, which is allowed).
func (q query) timeRange() (sdk.TimeRange, error) {
	from, err := q.time("from")
	if err != nil {
		return sdk.TimeRange{}, err
	}
	to, err := q.time("to")
	if err != nil {
		return sdk.TimeRange{}, err
	}
	if !from.IsZero() && !to.IsZero() && from.After(to) {
		return sdk.TimeRange{}, badParam("from", "from (%s) is after to (%s)", from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))
	}
	return sdk.TimeRange{From: from, To: to}, nil
}

// addr reads an IP address; IPv4-mapped IPv6 is unmapped, as the
// aggregator stores IPv4 sources.
func (q query) addr(name string) (netip.Addr, error) {
	s := q.get(name)
	if s == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, badParam(name, "%s: %.60q is not an IP address", name, s)
	}
	return a.Unmap(), nil
}

// limit reads a count in [1, hi]; absent gives def.
func (q query) limit(def, hi int) (int, error) {
	s := q.get("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > hi {
		return 0, badParam("limit", "limit: %.20q is not a whole number from 1 to %d", s, hi)
	}
	return n, nil
}

// enum reads one of allowed; absent gives def.
func (q query) enum(name, def string, allowed ...string) (string, error) {
	s := q.get(name)
	if s == "" {
		return def, nil
	}
	if !slices.Contains(allowed, s) {
		return "", badParam(name, "%s: %.40q is not one of %s", name, s, strings.Join(allowed, ", "))
	}
	return s, nil
}

// windowNames are the window sizes as the API writes them.
var windowNames = func() []string {
	var out []string
	for _, w := range sdk.WindowSizes {
		out = append(out, fmtWindow(w))
	}
	return out
}()

// fmtWindow writes a window size in seconds ("180s", not "3m0s"), as the
// pipeline's counters and the query parameter do.
func fmtWindow(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return d.String()
}

func (q query) window() (time.Duration, error) {
	s, err := q.enum("window", "5s", windowNames...)
	if err != nil {
		return 0, err
	}
	for _, w := range sdk.WindowSizes {
		if fmtWindow(w) == s {
			return w, nil
		}
	}
	return 0, badParam("window", "window: %q is not a window size", s)
}
