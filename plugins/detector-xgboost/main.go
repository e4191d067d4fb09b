// Command detector-xgboost is NetGuardian's bundled detector: it scores
// closed 30s and 180s windows with an XGBoost multi-class model (embedded in
// the binary; see model/REPORT.md) and raises an alert for every window
// whose most likely class is an attack with probability >= min_score.
// Each alert carries the runner-up class, every class probability, and the
// features that pushed the decision most (Saabas per-tree contributions).
//
// The core starts it; it is not meant to be run by hand. See README.md.
package main

import (
	"fmt"
	"os"

	"github.com/netguardian/netguardian/sdk"
)

func main() {
	sdk.Serve(newDetector(func(err error) {
		fmt.Fprintln(os.Stderr, "detector-xgboost:", err)
		os.Exit(1)
	}))
}
