// Package browsertest drives the NetGuardian dashboard in a real headless
// Chromium and checks what a person would look at: the packet counter
// moving, a live chart drawn, an alert row for a given source, its detail
// view. core/api's tests and the end-to-end sensor test share it, which is
// why it is a normal package rather than a _test.go file. Only test
// binaries should import it (it pulls in chromedp).
package browsertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/chromedp/chromedp"
)

// DefaultChromium is where Debian's chromium package puts the browser
// (scripts/install-deps.sh installs it).
const DefaultChromium = "/usr/bin/chromium"

// Options says what to open and what to expect.
type Options struct {
	// URL of the dashboard page, e.g. http://127.0.0.1:5000/.
	URL string
	// Token is typed into the page's token dialog; empty when the API has none.
	Token string
	// AlertSrc is the source address an alert row must appear for.
	AlertSrc string
	// Timeout bounds the whole check (default 90 s: a loaded CI machine
	// starts Chromium slowly).
	Timeout time.Duration
	// Chromium is the browser binary (default DefaultChromium).
	Chromium string
	// Width and Height of the window (default 1440×1400, which shows the
	// whole dashboard in a screenshot).
	Width, Height int
	// FilterBySource also applies the page's source filter for AlertSrc
	// and waits for that source's chart and an alerts table holding only
	// its alerts.
	FilterBySource bool
	// Settle is how long to let the page run before the screenshot, so
	// that the live charts have more than their first points.
	Settle time.Duration
	// Logf, when set, reports each step (t.Logf).
	Logf func(format string, args ...any)
}

// Result is what the page showed.
type Result struct {
	PacketsBefore, PacketsAfter float64 // the counter's data-value when first non-zero, and once it rose
	ChartWidth, ChartHeight     int     // the packets/s chart's canvas, in device pixels
	AlertLabel                  string  // the detail view's label for AlertSrc's alert
	Filtered                    bool    // the source filter was applied and worked
	Screenshot                  []byte  // PNG of the whole page at the end
	// ConsoleErrors are console.error calls and browser log errors (a 401
	// before the token is entered shows up here); Exceptions are uncaught
	// script errors, which a working page has none of.
	ConsoleErrors, Exceptions []string
}

// Available reports whether the browser binary exists, so that tests can
// skip with a clear message where it is not installed.
func Available(path string) bool {
	if path == "" {
		path = DefaultChromium
	}
	st, err := os.Stat(path)
	return err == nil && !st.IsDir()
}

// Check opens the dashboard and waits, step by step, for each expectation;
// an error names the step that did not happen in time.
func Check(ctx context.Context, o Options) (*Result, error) {
	if o.URL == "" || o.AlertSrc == "" {
		return nil, errors.New("browsertest: URL and AlertSrc are required")
	}
	if o.Chromium == "" {
		o.Chromium = DefaultChromium
	}
	if o.Timeout <= 0 {
		o.Timeout = 90 * time.Second
	}
	if o.Width <= 0 || o.Height <= 0 {
		o.Width, o.Height = 1440, 1400
	}
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	profile, err := os.MkdirTemp("", "netguardian-chromium-")
	if err != nil {
		return nil, fmt.Errorf("browsertest: profile dir: %w", err)
	}
	defer os.RemoveAll(profile)

	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	allocOpts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(o.Chromium),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root, where the sandbox cannot start
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(profile), // fresh: no cached token or page
		chromedp.WindowSize(o.Width, o.Height),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, allocOpts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()

	res := &Result{}
	// Start the browser (the first Run) before subscribing to its console.
	if _, err := chromedp.Run(bctx, chromedp.Sleep(0)); err != nil {
		return nil, fmt.Errorf("browsertest: start %s: %w", o.Chromium, err)
	}
	var mu sync.Mutex
	var consoleErrs, exceptions []string
	messages := chromedp.Console(bctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			mu.Lock()
			switch {
			case m.IsException():
				exceptions = append(exceptions, m.String())
			case m.Type == chromedp.ConsoleError:
				consoleErrs = append(consoleErrs, m.String())
			}
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		res.ConsoleErrors = append([]string(nil), consoleErrs...)
		res.Exceptions = append([]string(nil), exceptions...)
		mu.Unlock()
	}()

	remaining := func() time.Duration {
		d, _ := ctx.Deadline()
		return max(time.Until(d), time.Second)
	}
	poll := func(step, js string, out any) error {
		logf("browser: waiting for %s", step)
		v, err := chromedp.Run(bctx, chromedp.Poll[json.RawMessage](js, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(remaining())))
		if err != nil {
			return fmt.Errorf("browsertest: %s: %w", step, err)
		}
		if out != nil {
			if err := json.Unmarshal(v, out); err != nil {
				return fmt.Errorf("browsertest: %s: decode %s: %w", step, v, err)
			}
		}
		return nil
	}

	logf("browser: opening %s", o.URL)
	if err := chromedp.Do(bctx, chromedp.Navigate(o.URL)); err != nil {
		return res, fmt.Errorf("browsertest: open %s: %w", o.URL, err)
	}
	if o.Token != "" {
		logf("browser: entering the token")
		if err := chromedp.Do(bctx,
			chromedp.WaitVisible(chromedp.CSS("#token-input")),
			chromedp.SendKeys(chromedp.CSS("#token-input"), o.Token),
			chromedp.Click(chromedp.CSS("#token-submit")),
			chromedp.WaitNotVisible(chromedp.CSS("#token-dialog")),
		); err != nil {
			return res, fmt.Errorf("browsertest: token dialog: %w", err)
		}
	}

	counter := `Number(document.getElementById("packets").dataset.value || 0)`
	if err := poll("a packet count", `(() => { const v = `+counter+`; return v > 0 ? v : false })()`, &res.PacketsBefore); err != nil {
		return res, err
	}
	before := strconv.FormatFloat(res.PacketsBefore, 'f', -1, 64)
	if err := poll("the packet counter to rise above "+before, `(() => { const v = `+counter+`; return v > `+before+` ? v : false })()`, &res.PacketsAfter); err != nil {
		return res, err
	}

	// The live chart is drawn once its canvas has a size and holds pixels
	// of the series' stroke (#4fc3f7), which needs two snapshots at least.
	var size []int
	if err := poll("the packets/s chart to be drawn", `(() => {
		const c = document.querySelector("#chart-pps canvas");
		if (!c || c.width === 0 || c.height === 0) return false;
		const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
		for (let i = 0; i < d.length; i += 4) {
			if (d[i + 3] > 200 && d[i] < 130 && d[i + 1] > 160 && d[i + 2] > 200) return [c.width, c.height];
		}
		return false;
	})()`, &size); err != nil {
		return res, err
	}
	if len(size) == 2 {
		res.ChartWidth, res.ChartHeight = size[0], size[1]
	}

	row := `#alerts tbody tr[data-src="` + o.AlertSrc + `"]`
	if err := poll("an alert row for "+o.AlertSrc, `document.querySelector(`+strconv.Quote(row)+`) !== null`, nil); err != nil {
		return res, err
	}
	logf("browser: opening the alert's detail view")
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(row)), chromedp.WaitVisible(chromedp.CSS("#detail-body"))); err != nil {
		return res, fmt.Errorf("browsertest: alert detail: %w", err)
	}
	if res.AlertLabel, err = chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#d-label"))); err != nil {
		return res, fmt.Errorf("browsertest: alert detail label: %w", err)
	}
	if o.FilterBySource {
		logf("browser: filtering on source %s", o.AlertSrc)
		if err := chromedp.Do(bctx,
			chromedp.SendKeys(chromedp.CSS("#src"), o.AlertSrc),
			chromedp.Click(chromedp.CSS(`#filters button[type="submit"]`)),
			chromedp.WaitVisible(chromedp.CSS("#source-panel")),
		); err != nil {
			return res, fmt.Errorf("browsertest: source filter: %w", err)
		}
		if err := poll("the source chart and a filtered alerts table", `(() => {
			const c = document.querySelector("#chart-source canvas");
			if (!c || c.width === 0) return false;
			const rows = [...document.querySelectorAll("#alerts tbody tr")];
			return rows.length > 0 && rows.every(r => r.dataset.src === `+strconv.Quote(o.AlertSrc)+`);
		})()`, nil); err != nil {
			return res, err
		}
		res.Filtered = true
	}
	// Let the click's highlight (and the charts, if asked) settle before the picture.
	if err := chromedp.Do(bctx, chromedp.Sleep(max(o.Settle, 300*time.Millisecond))); err != nil {
		return res, err
	}
	if res.Screenshot, err = chromedp.Run(bctx, chromedp.FullScreenshot(100)); err != nil {
		return res, fmt.Errorf("browsertest: screenshot: %w", err)
	}
	return res, nil
}
