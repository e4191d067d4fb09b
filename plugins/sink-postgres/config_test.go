package main

import (
	"context"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/netguardian/netguardian/internal/pgtest"
	"github.com/netguardian/netguardian/sdk"
)

// configureErr launches the plugin and returns Configure's error.
func configureErr(t *testing.T, attrs map[string]any) (*launched, error) {
	t.Helper()
	p := launch(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	return p, p.conn.Configure(ctx, sdk.Config{JSON: configJSON(t, attrs), Runtime: sdk.Runtime{Sensor: "s"}})
}

func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// withPassword returns rawURL with its password replaced.
func withPassword(t *testing.T, rawURL, pw string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), pw)
	return u.String()
}

func TestConfigureErrors(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t)
	const secret = "Sup3r-s3cret-pw"

	check := func(t *testing.T, err error, p *launched, want []string, secrets ...string) {
		t.Helper()
		if err == nil {
			t.Fatal("Configure succeeded; want an error")
		}
		msg := err.Error()
		t.Logf("Configure: %s", msg)
		for _, w := range want {
			if !strings.Contains(msg, w) {
				t.Errorf("error %q does not mention %q", msg, w)
			}
		}
		// Stats and the plugin's log lines must not leak either.
		st, serr := p.conn.Stats(t.Context())
		if serr != nil {
			t.Fatal(serr)
		}
		if st.Healthy {
			t.Errorf("Stats after a failed Configure: healthy")
		}
		time.Sleep(50 * time.Millisecond) // let forwarded log lines arrive
		for _, s := range secrets {
			if s == "" {
				continue
			}
			if strings.Contains(msg, s) {
				t.Errorf("error %q contains the password", msg)
			}
			if strings.Contains(st.Message, s) {
				t.Errorf("Stats message %q contains the password", st.Message)
			}
			if strings.Contains(p.logs.String(), s) {
				t.Errorf("plugin log contains the password:\n%s", p.logs.String())
			}
		}
	}

	t.Run("UnreachablePort", func(t *testing.T) {
		t.Parallel()
		port := closedPort(t)
		u := "postgres://netguardian:" + secret + "@127.0.0.1:" + strconv.Itoa(port) + "/ng?sslmode=disable&connect_timeout=5"
		p, err := configureErr(t, map[string]any{"url": u})
		check(t, err, p, []string{"connect to PostgreSQL", "netguardian@127.0.0.1:" + strconv.Itoa(port) + "/ng", "refused"}, secret)
	})
	t.Run("WrongPassword", func(t *testing.T) {
		t.Parallel()
		u := withPassword(t, srv.URL(), secret)
		if c, err := pgx.Connect(t.Context(), u); err == nil {
			c.Close(t.Context())
			t.Skip("the server at " + pgtest.EnvURL + " accepts any password; nothing to test")
		}
		p, err := configureErr(t, map[string]any{"url": u})
		check(t, err, p, []string{"connect to PostgreSQL", "password authentication failed"}, secret, srv.Password())
	})
	t.Run("UnparsableURL", func(t *testing.T) {
		t.Parallel()
		p, err := configureErr(t, map[string]any{"url": "postgres://netguardian:" + secret + "@db:notaport/ng"})
		check(t, err, p, []string{`config "url"`, "not a valid PostgreSQL URL"}, secret)
	})
	t.Run("NewerSchema", func(t *testing.T) {
		t.Parallel()
		mine := pgtest.Start(t)
		startSink(t, mine.URL(), nil) // migrates
		c := db(t, mine.URL())
		if _, err := c.Exec(t.Context(), "INSERT INTO ng_schema_migrations (version, name) VALUES (999, 'from_the_future')"); err != nil {
			t.Fatal(err)
		}
		p, err := configureErr(t, map[string]any{"url": mine.URL()})
		check(t, err, p, []string{"schema version 999", "version " + strconv.Itoa(schemaVersion()), "upgrade"}, mine.Password())
		// And it wrote nothing: the future schema is untouched.
		if n := count(t, c, "SELECT count(*) FROM ng_schema_migrations"); n != int64(schemaVersion())+1 {
			t.Errorf("%d migration rows after refusing; want %d", n, schemaVersion()+1)
		}
	})
	t.Run("BadValues", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			attrs map[string]any
			want  string
		}{
			{map[string]any{"url": ""}, `config "url": required`},
			{map[string]any{"url": srv.URL(), "snaplen": -1}, `config "snaplen"`},
			{map[string]any{"url": srv.URL(), "connections": 1000}, `config "connections"`},
			{map[string]any{"url": srv.URL(), "batch_rows": -5}, `config "batch_rows"`},
			{map[string]any{"url": srv.URL(), "partition": "30s"}, `config "partition": 30s is shorter than 1m0s`},
			{map[string]any{"url": srv.URL(), "partition": "90500ms"}, `config "partition": 1m30.5s is not a whole number of seconds`},
			{map[string]any{"url": srv.URL(), "retention": "-1h"}, `config "retention"`},
			{map[string]any{"url": srv.URL(), "retention": "soon"}, `config "retention"`},
			{map[string]any{"url": srv.URL(), "flush_interval": "-1s"}, `config "flush_interval": -1s is outside 0..1s`},
			{map[string]any{"url": srv.URL(), "flush_interval": "2s"}, `config "flush_interval": 2s is outside 0..1s`},
			{map[string]any{"url": 42}, `config "url"`},
		} {
			p, err := configureErr(t, tc.attrs)
			check(t, err, p, []string{tc.want}, srv.Password())
		}
	})
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t)
	describe := func(p *launched) sdk.Info {
		t.Helper()
		info, err := p.conn.Describe(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return info
	}
	all := []sdk.RecordKind{sdk.RecordPackets, sdk.RecordFeatures, sdk.RecordAlerts}
	before := describe(launch(t))
	if before.Kind != sdk.KindSink || !before.ServesStore || !slices.Equal(before.Records, all) || !before.WantsFrames {
		t.Errorf("before Configure: kind %s, store %v, records %v, frames %v; want a store-serving sink claiming everything",
			before.Kind, before.ServesStore, before.Records, before.WantsFrames)
	}
	u, ok := before.Config.Lookup("url")
	if !ok || !u.Required || !u.Sensitive || u.Type != sdk.TypeString {
		t.Errorf("url attribute %+v: want a required, sensitive string", u)
	}
	for name, want := range map[string]any{"snaplen": 65535.0, "batch_rows": 5000.0, "connections": 4.0, "partition": "24h0m0s"} {
		a, ok := before.Config.Lookup(name)
		if !ok || a.Default == nil {
			t.Errorf("attribute %s: missing or without default", name)
			continue
		}
		if got := a.Default; got != want && !(a.Type == sdk.TypeNumber && toFloat(got) == want) {
			t.Errorf("attribute %s default %v (%T), want %v", name, got, got, want)
		}
	}

	for _, tc := range []struct {
		attrs   map[string]any
		records []sdk.RecordKind
		frames  bool
	}{
		{nil, []sdk.RecordKind{sdk.RecordFeatures, sdk.RecordAlerts}, false},
		{map[string]any{"raw_packets": true}, all, true},
		{map[string]any{"raw_packets": true, "snaplen": 0}, all, false},
	} {
		info := describe(startSink(t, srv.URL(), tc.attrs))
		if !slices.Equal(info.Records, tc.records) || info.WantsFrames != tc.frames {
			t.Errorf("after Configure(%v): records %v, frames %v; want %v, %v", tc.attrs, info.Records, info.WantsFrames, tc.records, tc.frames)
		}
	}
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case int:
		return float64(x)
	}
	return -1
}
