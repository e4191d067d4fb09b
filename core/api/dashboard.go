package api

import (
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"

	"github.com/gorilla/mux"
)

// The dashboard is built from web/ (npm run build) into dashboard/dist and
// committed, so that `go build` works on a fresh clone without Node.
//
//go:embed dashboard/dist
var dashboardFS embed.FS

var dist, _ = fs.Sub(dashboardFS, "dashboard/dist")

// dashboardCSP allows only the page's own script, style and connections
// (ws: and wss: to the same host are covered by 'self').
const dashboardCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func (s *Server) serveIndex(w http.ResponseWriter, r *http.Request) {
	s.serveDist(w, r, "index.html")
}

func (s *Server) serveAsset(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["file"]
	if name == "index.html" || path.Base(name) != name {
		writeJSON(w, http.StatusNotFound, &apiError{Message: "not found"})
		return
	}
	s.serveDist(w, r, name)
}

func (s *Server) serveDist(w http.ResponseWriter, r *http.Request, name string) {
	b, err := fs.ReadFile(dist, name)
	if err != nil {
		writeJSON(w, http.StatusNotFound, &apiError{Message: "not found"})
		return
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("Content-Security-Policy", dashboardCSP)
	// Asset names do not change between builds, so the browser revalidates.
	h.Set("Cache-Control", "no-cache")
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.Write(b)
}
