package api

import (
	"net/http"

	"github.com/netguardian/netguardian/sdk"
)

// Limits of the limit parameters, and their defaults.
const (
	maxFeatureLimit     = 10_000
	defaultFeatureLimit = 1_000
	maxTopLimit         = 1_000
	defaultTopLimit     = 10
	maxAlertLimit       = 1_000
	defaultAlertLimit   = 100
	maxActiveLimit      = 10_000
	defaultActiveLimit  = 1_000
)

func (s *Server) getFeatures(r *http.Request, q query) (any, error) {
	w, err := q.window()
	if err != nil {
		return nil, err
	}
	src, err := q.addr("src")
	if err != nil {
		return nil, err
	}
	rng, err := q.timeRange()
	if err != nil {
		return nil, err
	}
	limit, err := q.limit(defaultFeatureLimit, maxFeatureLimit)
	if err != nil {
		return nil, err
	}
	b, err := s.cfg.Store.QueryFeatures(r.Context(), sdk.FeatureQuery{Window: w, Src: src, Range: rng, Limit: limit})
	if err != nil {
		return nil, fromStore(err)
	}
	out := featuresResponse{Window: fmtWindow(w), Names: []string{}, Rows: []featureRow{}}
	if b != nil {
		if b.Names != nil {
			out.Names = b.Names
		}
		for i := range b.Rows {
			out.Rows = append(out.Rows, featureRow{names: out.Names, row: &b.Rows[i]})
		}
	}
	return out, nil
}

func (s *Server) getProtocols(r *http.Request, q query) (any, error) {
	rng, err := q.timeRange()
	if err != nil {
		return nil, err
	}
	ps, err := s.cfg.Store.QueryProtocols(r.Context(), rng)
	if err != nil {
		return nil, fromStore(err)
	}
	out := struct {
		Protocols []protocolJSON `json:"protocols"`
	}{Protocols: []protocolJSON{}}
	for _, p := range ps {
		out.Protocols = append(out.Protocols, protocolJSON{Protocol: p.Protocol, Packets: p.Packets, Bytes: p.Bytes})
	}
	return out, nil
}

func (s *Server) getTopSources(r *http.Request, q query) (any, error) {
	by, err := q.enum("by", "bytes", "bytes", "packets")
	if err != nil {
		return nil, err
	}
	rng, err := q.timeRange()
	if err != nil {
		return nil, err
	}
	limit, err := q.limit(defaultTopLimit, maxTopLimit)
	if err != nil {
		return nil, err
	}
	ts, err := s.cfg.Store.QueryTopSources(r.Context(), sdk.TopSourcesQuery{By: by, Range: rng, Limit: limit})
	if err != nil {
		return nil, fromStore(err)
	}
	out := struct {
		By      string       `json:"by"`
		Sources []sourceJSON `json:"sources"`
	}{By: by, Sources: []sourceJSON{}}
	for _, t := range ts {
		out.Sources = append(out.Sources, sourceJSON{Src: addrString(t.Src), Packets: t.Packets, Bytes: t.Bytes})
	}
	return out, nil
}

func (s *Server) getAlerts(r *http.Request, q query) (any, error) {
	var aq sdk.AlertQuery
	if sev := q.get("severity"); sev != "" {
		v, ok := sdk.ParseSeverity(sev)
		if !ok {
			return nil, badParam("severity", "severity: %.40q is not one of low, medium, high, critical", sev)
		}
		aq.Severity = v
	}
	var err error
	if aq.Label, err = q.text("label"); err != nil {
		return nil, err
	}
	if aq.Src, err = q.addr("src"); err != nil {
		return nil, err
	}
	if aq.Range, err = q.timeRange(); err != nil {
		return nil, err
	}
	if aq.Limit, err = q.limit(defaultAlertLimit, maxAlertLimit); err != nil {
		return nil, err
	}
	if aq.Cursor, err = q.text("cursor"); err != nil {
		return nil, err
	}
	page, err := s.cfg.Store.QueryAlerts(r.Context(), aq)
	if err != nil {
		return nil, fromStore(err)
	}
	return alertsResponse{Alerts: toAlertsJSON(page.Alerts), NextCursor: page.NextCursor}, nil
}

func (s *Server) getActive(_ *http.Request, q query) (any, error) {
	limit, err := q.limit(defaultActiveLimit, maxActiveLimit)
	if err != nil {
		return nil, err
	}
	return s.activeView(limit, true), nil
}

// activeView lists active alerts; snapshots leave out the detectors' free
// form details, which every client would otherwise get every interval.
func (s *Server) activeView(limit int, details bool) activeResponse {
	as, total, asOf := s.active.list(limit)
	out := activeResponse{ActiveFor: s.cfg.ActiveFor.String(), Total: total, Alerts: toAlertsJSON(as)}
	if !details {
		for i := range out.Alerts {
			out.Alerts[i].Details = nil
		}
	}
	if !asOf.IsZero() {
		t := asOf.UTC()
		out.AsOf = &t
	}
	return out
}

func (s *Server) getHealth(_ *http.Request, _ query) (any, error) {
	return s.health(s.cfg.Stats()), nil
}

func (s *Server) getPlugins(_ *http.Request, _ query) (any, error) {
	out := struct {
		Plugins []pluginJSON `json:"plugins"`
	}{Plugins: []pluginJSON{}}
	for _, p := range s.cfg.Plugins() {
		out.Plugins = append(out.Plugins, toPluginJSON(p))
	}
	return out, nil
}
