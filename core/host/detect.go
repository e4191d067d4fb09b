package host

import (
	"context"
	"fmt"
	"time"

	"github.com/netguardian/netguardian/sdk"
)

// Detect sends b to the detector and checks its answer. When the process
// dies during the call it is restarted and the batch sent again (up to
// three attempts). A detector that errs, hangs past timeout or answers
// nonsense gets a counted failure and an error naming the problem.
func (p *Plugin) Detect(ctx context.Context, b *sdk.FeatureBatch, timeout time.Duration) ([]sdk.Alert, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		conn, err := p.Conn()
		if err != nil {
			return nil, err
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		deadline, _ := cctx.Deadline()
		alerts, err := conn.Detect(cctx, b)
		// The plugin side gets the same deadline and may cancel the call a
		// moment before ours fires, so "nearly at the deadline" counts too.
		timedOut := ctx.Err() == nil && (cctx.Err() != nil || time.Until(deadline) < 100*time.Millisecond)
		cancel()
		if err == nil {
			if err := CheckAlerts(p.Info(), b, alerts); err != nil {
				err = fmt.Errorf("detector %q: %w", p.spec.Name, err)
				p.CountFailure(err)
				return nil, err
			}
			return alerts, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if timedOut {
			err = fmt.Errorf("detector %q did not answer within %s", p.spec.Name, timeout)
			p.CountFailure(err)
			return nil, err
		}
		lastErr = err
		if !Crashed(conn) {
			err = fmt.Errorf("detector %q: %w", p.spec.Name, err)
			p.CountFailure(err)
			return nil, err
		}
		if rerr := p.Restart(ctx, conn, err); rerr != nil {
			return nil, rerr
		}
	}
	err := fmt.Errorf("detector %q crashed on the same batch three times: %w", p.spec.Name, lastErr)
	p.CountFailure(err)
	return nil, err
}

// CheckAlerts rejects answers a detector cannot honestly give: more alerts
// than rows, rows that do not exist, labels it did not declare, scores
// that are not numbers, unknown severities.
func CheckAlerts(info sdk.Info, b *sdk.FeatureBatch, alerts []sdk.Alert) error {
	if len(alerts) > len(b.Rows) {
		return fmt.Errorf("returned %d alerts for %d rows", len(alerts), len(b.Rows))
	}
	labels := make(map[string]bool, len(info.Labels))
	for _, l := range info.Labels {
		labels[l] = true
	}
	for i, a := range alerts {
		switch {
		case a.Row < 0 || a.Row >= len(b.Rows):
			return fmt.Errorf("alert %d names row %d of a %d-row batch", i, a.Row, len(b.Rows))
		case a.Label == "":
			return fmt.Errorf("alert %d has no label", i)
		case len(labels) > 0 && !labels[a.Label]:
			return fmt.Errorf("alert %d has label %q, which the detector did not declare (declared: %v)", i, a.Label, info.Labels)
		case a.Score != a.Score:
			return fmt.Errorf("alert %d has a NaN score", i)
		}
		if a.Severity != "" {
			if _, ok := sdk.ParseSeverity(string(a.Severity)); !ok {
				return fmt.Errorf("alert %d has unknown severity %q", i, a.Severity)
			}
		}
	}
	return nil
}
