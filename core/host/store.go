package host

import (
	"context"

	"github.com/netguardian/netguardian/sdk"
)

// Store returns the queries of a sink that serves them, through whatever
// connection is current, so the API keeps working across restarts.
func (p *Plugin) Store() sdk.Store { return pluginStore{p} }

type pluginStore struct{ p *Plugin }

func (s pluginStore) store() (sdk.Store, error) {
	conn, err := s.p.Conn()
	if err != nil {
		return nil, err
	}
	return conn.Store(), nil
}

func (s pluginStore) QueryFeatures(ctx context.Context, q sdk.FeatureQuery) (*sdk.FeatureBatch, error) {
	st, err := s.store()
	if err != nil {
		return nil, err
	}
	return st.QueryFeatures(ctx, q)
}

func (s pluginStore) QueryProtocols(ctx context.Context, q sdk.TimeRange) ([]sdk.ProtocolCount, error) {
	st, err := s.store()
	if err != nil {
		return nil, err
	}
	return st.QueryProtocols(ctx, q)
}

func (s pluginStore) QueryTopSources(ctx context.Context, q sdk.TopSourcesQuery) ([]sdk.SourceTotal, error) {
	st, err := s.store()
	if err != nil {
		return nil, err
	}
	return st.QueryTopSources(ctx, q)
}

func (s pluginStore) QueryAlerts(ctx context.Context, q sdk.AlertQuery) (sdk.AlertPage, error) {
	st, err := s.store()
	if err != nil {
		return sdk.AlertPage{}, err
	}
	return st.QueryAlerts(ctx, q)
}
