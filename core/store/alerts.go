package store

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/netguardian/netguardian/sdk"
)

type storedAlert struct {
	time int64 // a.Time in unix ns, the first sort key
	a    sdk.Alert
}

func cmpAlert(a, b *storedAlert) int {
	if c := cmp.Compare(a.time, b.time); c != 0 {
		return c
	}
	return strings.Compare(a.a.ID, b.a.ID)
}

// cloneAlert copies the alert's slices: neither the appender nor a query's
// caller may change what the store holds.
func cloneAlert(a sdk.Alert) sdk.Alert {
	a.TopFeatures = slices.Clone(a.TopFeatures)
	a.Details = slices.Clone(a.Details)
	return a
}

// AppendAlerts stores alerts; an ID already held is left as it is (a
// re-sent batch). Every alert needs an ID, since IDs make the order total
// and pagination exact.
func (m *Memory) AppendAlerts(ctx context.Context, alerts []sdk.Alert) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for i := range alerts {
		if alerts[i].ID == "" {
			return fmt.Errorf("append alerts: alert %d has no ID", i)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	in := make([]storedAlert, 0, len(alerts))
	for _, a := range alerts {
		if _, ok := m.alertIDs[a.ID]; ok {
			continue
		}
		m.alertIDs[a.ID] = struct{}{}
		in = append(in, storedAlert{time: a.Time.UnixNano(), a: cloneAlert(a)})
	}
	if len(in) == 0 {
		return nil
	}
	slices.SortFunc(in, func(a, b storedAlert) int { return cmpAlert(&a, &b) })
	m.insertAlerts(in)
	m.evictAlerts()
	return nil
}

// insertAlerts merges sorted new alerts (IDs not held) into m.alerts.
func (m *Memory) insertAlerts(in []storedAlert) {
	n := len(m.alerts)
	if n == 0 || cmpAlert(&m.alerts[n-1], &in[0]) < 0 {
		m.alerts = append(m.alerts, in...) // the usual case: newer than all held
		return
	}
	p := sort.Search(n, func(i int) bool { return cmpAlert(&m.alerts[i], &in[0]) > 0 })
	tail := slices.Clone(m.alerts[p:])
	clear(m.alerts[p:])
	m.alerts = m.alerts[:p]
	i, j := 0, 0
	for i < len(tail) || j < len(in) {
		if j == len(in) || (i < len(tail) && cmpAlert(&tail[i], &in[j]) < 0) {
			m.alerts = append(m.alerts, tail[i])
			i++
		} else {
			m.alerts = append(m.alerts, in[j])
			j++
		}
	}
}

func (m *Memory) evictAlerts() {
	drop := max(0, len(m.alerts)-m.opts.MaxAlerts)
	if r := m.opts.Retention; r > 0 && len(m.alerts) > 0 {
		cutoff := m.alerts[len(m.alerts)-1].time - int64(r)
		drop = max(drop, sort.Search(len(m.alerts), func(i int) bool { return m.alerts[i].time >= cutoff }))
	}
	if drop == 0 {
		return
	}
	for i := range drop {
		delete(m.alertIDs, m.alerts[i].a.ID)
	}
	clear(m.alerts[:drop])
	m.alerts = m.alerts[drop:]
	m.alertsEvicted += uint64(drop)
}

// QueryAlerts implements sdk.Store: newest first by (Time, ID), filters on
// severity, label, source and window end, keyset pagination.
func (m *Memory) QueryAlerts(ctx context.Context, q sdk.AlertQuery) (sdk.AlertPage, error) {
	if err := ctx.Err(); err != nil {
		return sdk.AlertPage{}, err
	}
	if q.Severity != "" {
		if _, ok := sdk.ParseSeverity(string(q.Severity)); !ok {
			return sdk.AlertPage{}, fmt.Errorf("query alerts: unknown severity %q", q.Severity)
		}
	}
	if q.Limit < 0 {
		return sdk.AlertPage{}, fmt.Errorf("query alerts: negative limit %d", q.Limit)
	}
	limit := q.Limit
	if limit == 0 {
		limit = DefaultAlertLimit
	}
	var after *storedAlert
	if q.Cursor != "" {
		c, err := decodeCursor(q.Cursor)
		if err != nil {
			return sdk.AlertPage{}, fmt.Errorf("query alerts: %w", err)
		}
		after = &c
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	i := len(m.alerts)
	if after != nil {
		// Alerts strictly older than the cursor in (Time, ID) order.
		i = sort.Search(len(m.alerts), func(k int) bool { return cmpAlert(&m.alerts[k], after) >= 0 })
	}
	var page sdk.AlertPage
	last := -1 // index of the page's last alert
	for i--; i >= 0; i-- {
		a := &m.alerts[i].a
		if (q.Severity != "" && a.Severity != q.Severity) || (q.Label != "" && a.Label != q.Label) ||
			(q.Src.IsValid() && a.Src != q.Src) || !q.Range.Contains(a.End) {
			continue
		}
		if len(page.Alerts) == limit {
			// Another match follows the full page: continue after its last alert.
			page.NextCursor = encodeCursor(&m.alerts[last])
			break
		}
		page.Alerts = append(page.Alerts, cloneAlert(*a))
		last = i
	}
	return page, nil
}

// Cursors are base64url of a version byte, the Time in unix ns (8 bytes,
// big endian) and the ID: the (Time, ID) key of the page's last alert.
const cursorVersion = 1

func encodeCursor(a *storedAlert) string {
	b := make([]byte, 9, 9+len(a.a.ID))
	b[0] = cursorVersion
	binary.BigEndian.PutUint64(b[1:], uint64(a.time))
	b = append(b, a.a.ID...)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (storedAlert, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	// The decoder skips newlines and spare bits: only the spelling
	// encodeCursor writes is one we issued.
	if err != nil || len(b) < 10 || b[0] != cursorVersion || !utf8.Valid(b[9:]) || base64.RawURLEncoding.EncodeToString(b) != s {
		return storedAlert{}, fmt.Errorf("cursor %.40q: %w", s, sdk.ErrBadCursor)
	}
	return storedAlert{time: int64(binary.BigEndian.Uint64(b[1:9])), a: sdk.Alert{ID: string(b[9:])}}, nil
}
