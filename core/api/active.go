package api

import (
	"cmp"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/netguardian/netguardian/sdk"
)

// activeSet is the dashboard's view of "active" alerts (DESIGN: Alerts):
// the newest alert per (source, label) whose window ended within activeFor
// of the present, where the present is packet time — the newest packet or
// alert window end seen — so a replayed capture's alerts are active while
// it plays. Stores answer history; this is the live view, and it lives in
// the API because the API is its only reader.
type activeSet struct {
	activeFor time.Duration
	max       int

	mu     sync.Mutex
	byKey  map[activeKey]sdk.Alert
	now    time.Time // newest packet time or window end seen
	pruned time.Time // s.now at the last prune
}

type activeKey struct {
	src   netip.Addr
	label string
}

func newActiveSet(activeFor time.Duration, maxKeys int) *activeSet {
	return &activeSet{activeFor: activeFor, max: maxKeys, byKey: map[activeKey]sdk.Alert{}}
}

// newer orders alerts of one key: the later window end wins, then the
// later Time (the window's aligned end), then the ID (so the choice does
// not depend on arrival order).
func newer(a, b sdk.Alert) bool {
	if c := a.End.Compare(b.End); c != 0 {
		return c > 0
	}
	if c := a.Time.Compare(b.Time); c != 0 {
		return c > 0
	}
	return a.ID > b.ID
}

func (s *activeSet) add(a sdk.Alert) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance(a.End)
	if a.End.Before(s.cutoff()) {
		return // already too old to show
	}
	k := activeKey{a.Src, a.Label}
	if old, ok := s.byKey[k]; ok && !newer(a, old) {
		return
	}
	a.TopFeatures = slices.Clone(a.TopFeatures)
	a.Details = slices.Clone(a.Details)
	s.byKey[k] = a
	if len(s.byKey) > s.max {
		s.evictOldest(len(s.byKey) - s.max)
	}
}

// observe moves the present to t when t is later.
func (s *activeSet) observe(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance(t)
}

func (s *activeSet) cutoff() time.Time { return s.now.Add(-s.activeFor) }

// advance moves the present forward and drops what fell out of it; the
// sweep runs at most once per second of packet time, as the map can hold
// thousands of keys during a scan.
func (s *activeSet) advance(t time.Time) {
	if !t.After(s.now) {
		return
	}
	s.now = t
	if s.now.Sub(s.pruned) < time.Second {
		return
	}
	s.pruned = s.now
	cut := s.cutoff()
	for k, a := range s.byKey {
		if a.End.Before(cut) {
			delete(s.byKey, k)
		}
	}
}

func (s *activeSet) evictOldest(n int) {
	all := make([]activeKey, 0, len(s.byKey))
	for k := range s.byKey {
		all = append(all, k)
	}
	slices.SortFunc(all, func(x, y activeKey) int { return s.byKey[x].End.Compare(s.byKey[y].End) })
	for _, k := range all[:n] {
		delete(s.byKey, k)
	}
}

// count is the number of active alerts.
func (s *activeSet) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	cut, n := s.cutoff(), 0
	for _, a := range s.byKey {
		if !a.End.Before(cut) {
			n++
		}
	}
	return n
}

// list returns up to limit active alerts, most recent window first (then
// highest score), the number active, and the present they were judged at.
func (s *activeSet) list(limit int) (alerts []sdk.Alert, total int, asOf time.Time) {
	s.mu.Lock()
	cut := s.cutoff()
	for _, a := range s.byKey {
		if !a.End.Before(cut) {
			alerts = append(alerts, a)
		}
	}
	asOf = s.now
	s.mu.Unlock()
	slices.SortFunc(alerts, func(x, y sdk.Alert) int {
		if c := y.End.Compare(x.End); c != 0 {
			return c
		}
		if c := cmp.Compare(y.Score, x.Score); c != 0 {
			return c
		}
		if c := x.Src.Compare(y.Src); c != 0 {
			return c
		}
		return cmp.Compare(x.Label, y.Label)
	})
	total = len(alerts)
	if len(alerts) > limit {
		alerts = alerts[:limit]
	}
	return alerts, total, asOf
}
