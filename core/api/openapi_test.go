package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gorilla/mux"
)

type oaParam struct {
	Ref      string `json:"$ref"`
	Name     string `json:"name"`
	In       string `json:"in"`
	Required bool   `json:"required"`
	Example  any    `json:"example"`
	Schema   any    `json:"schema"`
}

type oaOperation struct {
	Parameters []oaParam       `json:"parameters"`
	Responses  map[string]any  `json:"responses"`
	Security   json.RawMessage `json:"security"`
}

type oaDoc struct {
	OpenAPI    string                            `json:"openapi"`
	Paths      map[string]map[string]oaOperation `json:"paths"`
	Components struct {
		Parameters map[string]oaParam `json:"parameters"`
	} `json:"components"`
}

func loadOpenAPI(t *testing.T) oaDoc {
	t.Helper()
	var doc oaDoc
	dec := json.NewDecoder(bytes.NewReader(openAPI))
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	return doc
}

// params resolves an operation's parameters ($ref into components).
func (d oaDoc) params(t *testing.T, op oaOperation) []oaParam {
	var out []oaParam
	for _, p := range op.Parameters {
		if p.Ref != "" {
			name, ok := strings.CutPrefix(p.Ref, "#/components/parameters/")
			r, found := d.Components.Parameters[name]
			if !ok || !found {
				t.Fatalf("unresolved parameter ref %q", p.Ref)
			}
			p = r
		}
		out = append(out, p)
	}
	return out
}

// TestOpenAPIMatchesRouter walks the real router: every route is in the
// document with its query parameters, every documented path is routed, and
// the served routes accept the documented parameters and refuse others.
func TestOpenAPIMatchesRouter(t *testing.T) {
	doc := loadOpenAPI(t)
	f := newFixture(t, nil)

	routed := map[string]*endpoint{}
	err := f.srv.router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, err := route.GetPathTemplate()
		if err != nil {
			return err
		}
		methods, err := route.GetMethods()
		if err != nil {
			return fmt.Errorf("%s: %w", tpl, err)
		}
		slices.Sort(methods)
		if !slices.Equal(methods, []string{http.MethodGet, http.MethodHead}) {
			return fmt.Errorf("%s serves %v; the document describes GET (and HEAD) only", tpl, methods)
		}
		e, ok := route.GetHandler().(*endpoint)
		if !ok {
			return fmt.Errorf("%s: handler %T is not an endpoint", tpl, route.GetHandler())
		}
		routed[tpl] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(routed) < 10 {
		t.Fatalf("walked only %d routes", len(routed))
	}

	var docPaths, routePaths []string
	for p := range doc.Paths {
		docPaths = append(docPaths, p)
	}
	for p := range routed {
		routePaths = append(routePaths, p)
	}
	sort.Strings(docPaths)
	sort.Strings(routePaths)
	if !slices.Equal(docPaths, routePaths) {
		t.Fatalf("documented paths %v\nrouted paths     %v", docPaths, routePaths)
	}

	pathVar := regexp.MustCompile(`\{([^}]+)\}`)
	for path, e := range routed {
		ops := doc.Paths[path]
		op, ok := ops["get"]
		if !ok || len(ops) != 1 {
			t.Errorf("%s: document has operations %v, want get only", path, ops)
			continue
		}
		if len(op.Responses) == 0 {
			t.Errorf("%s: no responses documented", path)
		}
		var query, pathParams []string
		examples := url.Values{}
		for _, p := range doc.params(t, op) {
			switch p.In {
			case "query":
				query = append(query, p.Name)
				if p.Example == nil {
					t.Errorf("%s: parameter %s has no example", path, p.Name)
				}
				examples.Set(p.Name, fmt.Sprint(p.Example))
			case "path":
				pathParams = append(pathParams, p.Name)
				if !p.Required {
					t.Errorf("%s: path parameter %s must be required", path, p.Name)
				}
			default:
				t.Errorf("%s: parameter %s in %q", path, p.Name, p.In)
			}
		}
		var vars []string
		for _, m := range pathVar.FindAllStringSubmatch(path, -1) {
			vars = append(vars, m[1])
		}
		sorted := func(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }
		if !slices.Equal(sorted(query), sorted(e.params)) {
			t.Errorf("%s: documented query parameters %v, endpoint takes %v", path, sorted(query), sorted(e.params))
		}
		if !slices.Equal(sorted(pathParams), sorted(vars)) {
			t.Errorf("%s: documented path parameters %v, route has %v", path, pathParams, vars)
		}
		// Public routes say so; the others accept the bearer scheme.
		if public := e.auth == authPublic; public != (string(op.Security) == "[]") {
			t.Errorf("%s: public %v but security %s", path, public, op.Security)
		}

		// Behaviour: the documented examples are accepted (not a parameter
		// error), an undocumented parameter is refused unless the route is
		// lenient.
		concrete := pathVar.ReplaceAllString(path, "app.js")
		for name := range examples {
			code, _, body := f.get(t, concrete+"?"+url.Values{name: examples[name]}.Encode())
			var ae apiError
			json.Unmarshal(body, &ae)
			if code == http.StatusBadRequest && ae.Param != "" {
				t.Errorf("%s?%s=%s: refused: %s", path, name, examples.Get(name), body)
			}
		}
		code, _, body := f.get(t, concrete+"?undocumented=1")
		var ae apiError
		json.Unmarshal(body, &ae)
		if refused := code == http.StatusBadRequest && ae.Param == "undocumented"; refused == e.lenient {
			t.Errorf("%s: lenient %v, but an undocumented parameter gave %d %s", path, e.lenient, code, body)
		}
	}

	// The served document is the embedded one.
	code, _, body := f.get(t, "/api/openapi.json")
	if code != http.StatusOK || !bytes.Equal(body, openAPI) {
		t.Fatalf("/api/openapi.json: %d, %d bytes", code, len(body))
	}
}
