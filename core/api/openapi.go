package api

import (
	_ "embed"
	"net/http"
)

// openAPI describes every route; TestOpenAPIMatchesRouter keeps it honest.
//
//go:embed openapi.json
var openAPI []byte

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if r.Method == http.MethodHead {
		return
	}
	w.Write(openAPI)
}
