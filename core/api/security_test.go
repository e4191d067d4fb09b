package api

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// getHost requests path from f with the given Host header, as a browser
// sends it for a page whose name resolves to the sensor.
func getHost(t *testing.T, f *fixture, host, path string, header ...string) (int, apiError) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.http.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := f.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var e apiError
	if res.StatusCode != http.StatusOK {
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("Host %q: %d with a body that is not JSON: %s", host, res.StatusCode, body)
		}
	}
	return res.StatusCode, e
}

// TestHostCheck: a sensor without a token refuses requests whose Host is
// not a loopback name or an allowed origin's host (DNS rebinding); with a
// token, any Host reaches the token check.
func TestHostCheck(t *testing.T) {
	f := newFixture(t, func(c *Config, _ *tuning) { c.AllowedOrigins = []string{"https://NOC.example.com:8443"} })
	port := f.http.URL[strings.LastIndex(f.http.URL, ":"):]
	for _, c := range []struct {
		host string
		ok   bool
	}{
		{"127.0.0.1" + port, true},
		{"localhost" + port, true},
		{"LocalHost." + port, true},
		{"[::1]" + port, true},
		{"127.1.2.3", true},
		{"noc.example.com", true},
		{"noc.example.com:443", true},
		{"attacker.example" + port, false},
		{"127.0.0.1.attacker.example" + port, false},
		{"localhost.attacker.example", false},
		{"10.0.0.1" + port, false},
		{"[::ffff:203.0.113.7]", false},
	} {
		for _, path := range []string{"/api/health", "/", "/ws/dashboard"} {
			code, e := getHost(t, f, c.host, path)
			refused := code == http.StatusForbidden && strings.Contains(e.Message, "api.token")
			if c.ok == refused || (c.ok && path != "/ws/dashboard" && code != http.StatusOK) {
				t.Errorf("Host %q %s: %d %q; want served %v", c.host, path, code, e.Message, c.ok)
			}
		}
	}

	const token = "s3cret"
	f = newFixture(t, func(c *Config, _ *tuning) { c.Token = token })
	if code, _ := getHost(t, f, "sensor.example", "/api/health"); code != http.StatusUnauthorized {
		t.Errorf("with a token, no credentials: %d; want 401", code)
	}
	if code, e := getHost(t, f, "sensor.example", "/api/health", "Authorization", "Bearer "+token); code != http.StatusOK {
		t.Errorf("with a token and any Host: %d %q; want 200", code, e.Message)
	}
}
