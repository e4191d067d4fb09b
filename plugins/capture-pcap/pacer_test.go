package main

import (
	"testing"
	"time"
)

// The replay schedule: packets are due at their packet-time distance from
// the first one divided by speed, and max_gap cuts a long silence to
// max_gap (the packets after it keep their spacing).
func TestPacerSchedule(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := int64(time.Second)
	for _, c := range []struct {
		name   string
		speed  float64
		maxGap time.Duration
		ts     []int64
		want   []time.Duration // after start; -1 = at once
	}{
		{"recorded pace", 1, 0, []int64{0, s, 11 * s}, []time.Duration{-1, time.Second, 11 * time.Second}},
		{"twice as fast", 2, 0, []int64{0, s, 11 * s}, []time.Duration{-1, 500 * time.Millisecond, 5500 * time.Millisecond}},
		{"silence cut", 1, 100 * time.Millisecond, []int64{0, s / 20, 10 * s, 10*s + s/20}, []time.Duration{-1, 50 * time.Millisecond, 150 * time.Millisecond, 200 * time.Millisecond}},
		{"silence cut, fast", 4, time.Second, []int64{0, 60 * s, 60*s + s/2}, []time.Duration{-1, 250 * time.Millisecond, 375 * time.Millisecond}},
		{"time goes back", 1, 0, []int64{5 * s, 6 * s, 2 * s, 3 * s}, []time.Duration{-1, time.Second, -1, 2 * time.Second}},
	} {
		var pc pacer
		pc.init(c.speed, c.maxGap)
		now := start
		for i, ts := range c.ts {
			got := pc.due(ts, now)
			if c.want[i] < 0 {
				if !got.IsZero() {
					t.Errorf("%s: packet %d due at +%v, want at once", c.name, i, got.Sub(start))
				}
				continue
			}
			if got.Sub(start) != c.want[i] {
				t.Errorf("%s: packet %d due at +%v, want +%v", c.name, i, got.Sub(start), c.want[i])
			}
			now = got
		}
		pc.stop()
	}
}
