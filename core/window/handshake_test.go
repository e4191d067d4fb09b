package window

import (
	"math/rand/v2"
	"testing"
)

// The open-addressing handshake table behaves as a map with FIFO eviction:
// random SYNs and SYN/ACKs over a small key space (so keys repeat, collide
// and are deleted from the middle of probe runs) give the same answers as a
// reference built on a Go map and a slice.
func TestHandshakeTableMatchesReference(t *testing.T) {
	for _, bound := range []int{1, 7, 300, 5000} {
		rng := rand.New(rand.NewPCG(uint64(bound), 9))
		tab := newHSTable(bound)
		tab.seed = 1 // a weak seed makes clusters likelier
		ref := map[hsKey]int64{}
		var order []hsKey // reference FIFO of live keys, oldest first
		var evicted uint64
		drop := func(k hsKey) {
			for i, o := range order {
				if o == k {
					order = append(order[:i], order[i+1:]...)
					return
				}
			}
		}
		key := func() hsKey {
			var k hsKey
			k.client[10], k.client[11] = 0xff, 0xff
			k.server[10], k.server[11] = 0xff, 0xff
			k.client[15] = byte(rng.IntN(40))
			k.server[15] = byte(rng.IntN(3))
			k.cport = uint16(rng.IntN(60))
			if rng.IntN(10) == 0 { // some IPv6 keys
				k.client[0] = 0x20
			}
			return k
		}
		for ts := int64(1); ts <= 60000; ts++ {
			k := key()
			if rng.IntN(3) > 0 {
				tab.syn(&k, ts)
				if _, ok := ref[k]; ok {
					drop(k)
				} else if len(ref) >= bound {
					delete(ref, order[0])
					order = order[1:]
					evicted++
				}
				ref[k] = ts
				order = append(order, k)
			} else {
				lat, ok := tab.synack(&k, ts)
				want, wok := ref[k]
				if ok != wok || (ok && lat != ts-want) {
					t.Fatalf("bound %d ts %d: synack = %d, %v; want %d, %v", bound, ts, lat, ok, ts-want, wok)
				}
				if wok {
					delete(ref, k)
					drop(k)
				}
			}
			if tab.len() != len(ref) || tab.evicted != evicted {
				t.Fatalf("bound %d ts %d: %d held, %d evicted; want %d, %d", bound, ts, tab.len(), tab.evicted, len(ref), evicted)
			}
		}
		// Every live key is still found (no entry lost by a shift).
		for k, ts := range ref {
			if lat, ok := tab.synack(&k, ts+5); !ok || lat != 5 {
				t.Fatalf("bound %d: key held since %d not found (%d, %v)", bound, ts, lat, ok)
			}
		}
		if tab.len() != 0 {
			t.Fatalf("bound %d: %d entries left after matching all", bound, tab.len())
		}
		t.Logf("bound %d: %d evicted, table of %d slots", bound, evicted, len(tab.tab))
	}
}
