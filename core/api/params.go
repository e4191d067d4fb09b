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

// maxUnixSeconds is 9999-12-31T23:59:59Z, the last time RFC 3339 can write.
const maxUnixSeconds = 253402300799

// parseTime reads RFC 3339 or Unix seconds (decimals allowed).
func parseTime(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	if strings.Trim(s, "0123456789.") == "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f < 0 || f > maxUnixSeconds {
			return time.Time{}, false
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC(), true
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
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
	return t, nil
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
