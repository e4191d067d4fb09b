package sdk

import (
	"runtime/metrics"

	pb "github.com/netguardian/netguardian/sdk/proto/netguardian/v1"
)

// processMetrics are the runtime/metrics samples behind ProcessStats.
var processMetrics = []string{
	"/sched/goroutines:goroutines",
	"/gc/heap/live:bytes",
	"/memory/classes/total:bytes",
	"/memory/classes/heap/released:bytes",
	"/gc/cycles/total:gc-cycles",
}

// readProcessStats reads this process's Go runtime figures. runtime/metrics
// does not stop the world, unlike runtime.ReadMemStats.
func readProcessStats() ProcessStats {
	s := make([]metrics.Sample, len(processMetrics))
	for i, name := range processMetrics {
		s[i].Name = name
	}
	metrics.Read(s)
	v := func(i int) uint64 {
		if s[i].Value.Kind() != metrics.KindUint64 {
			return 0 // not known to this Go version
		}
		return s[i].Value.Uint64()
	}
	return ProcessStats{Goroutines: v(0), HeapLiveBytes: v(1), RuntimeBytes: v(2) - min(v(2), v(3)), GCCycles: v(4)}
}

func processToPB(p ProcessStats) *pb.ProcessStats {
	return &pb.ProcessStats{Goroutines: p.Goroutines, HeapLiveBytes: p.HeapLiveBytes, RuntimeBytes: p.RuntimeBytes, GcCycles: p.GCCycles}
}

func processFromPB(p *pb.ProcessStats) ProcessStats {
	return ProcessStats{Goroutines: p.GetGoroutines(), HeapLiveBytes: p.GetHeapLiveBytes(), RuntimeBytes: p.GetRuntimeBytes(), GCCycles: p.GetGcCycles()}
}
