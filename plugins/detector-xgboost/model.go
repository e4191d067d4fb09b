package main

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/netguardian/netguardian/plugins/detector-xgboost/xgbmodel"
	"github.com/netguardian/netguardian/sdk"
)

// The shipped model is compiled into the binary, so the plugin works from
// any directory; the model and labels settings replace it.
//
//go:embed model/xgboost_model.json model/labels.json
var embedded embed.FS

const (
	embeddedModelPath  = "model/xgboost_model.json"
	embeddedLabelsPath = "model/labels.json"
)

// labelsFile is the format of labels.json.
type labelsFile struct {
	// Classes names the model's outputs, in output order.
	Classes []string `json:"classes"`
	// Benign is the class that never raises an alert.
	Benign string `json:"benign"`
	// FeatureNames are the model's inputs in order; they may be left out
	// when the model stores its own feature names.
	FeatureNames []string `json:"feature_names,omitempty"`
	// Windows lists the window sizes (seconds) the model was trained on;
	// optional, used only to warn about other sizes.
	Windows []float64 `json:"windows,omitempty"`
	// MinScore is the alert threshold the training report recommends;
	// informational (the min_score setting decides).
	MinScore float64 `json:"min_score,omitempty"`
}

// model is a loaded model with its labels, ready to score.
type model struct {
	m        *xgbmodel.Model
	classes  []string
	quoted   [][]byte // classes as JSON strings, for alert details
	benign   int      // index of the benign class
	features []string
	windows  []float64
	minScore float64 // recommended by training, informational
	// source names where the model came from ("embedded" or a path) and
	// id is a short SHA-256 of its bytes, for alerts' details.
	source string
	id     string
}

// loadEmbedded returns the model compiled into the binary, parsed once:
// Describe needs it at start and Configure again, and parsing takes tens
// of milliseconds of every start. A model is read-only once loaded.
var loadEmbedded = sync.OnceValues(parseEmbedded)

func parseEmbedded() (*model, error) {
	mb, err := embedded.ReadFile(embeddedModelPath)
	if err != nil {
		return nil, err
	}
	lb, err := embedded.ReadFile(embeddedLabelsPath)
	if err != nil {
		return nil, err
	}
	return newModel(mb, "embedded "+embeddedModelPath, lb, "embedded "+embeddedLabelsPath)
}

// loadModelFiles loads a model and its labels from disk. An empty
// labelsPath means labels.json next to the model.
func loadModelFiles(modelPath, labelsPath string) (*model, error) {
	mb, err := readFile("model", modelPath)
	if err != nil {
		return nil, err
	}
	if labelsPath == "" {
		labelsPath = filepath.Join(filepath.Dir(modelPath), "labels.json")
		if _, err := os.Stat(labelsPath); err != nil {
			return nil, fmt.Errorf("labels: model %s is not the embedded one and %s does not exist; set labels to its labels.json", modelPath, labelsPath)
		}
	}
	lb, err := readFile("labels", labelsPath)
	if err != nil {
		return nil, err
	}
	return newModel(mb, modelPath, lb, labelsPath)
}

func readFile(what, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: %s does not exist", what, path)
		}
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return b, nil
}

// newModel parses and cross-checks a model and its labels.
func newModel(modelJSON []byte, modelSrc string, labelsJSON []byte, labelsSrc string) (*model, error) {
	if len(bytes.TrimSpace(modelJSON)) == 0 {
		return nil, fmt.Errorf("model: %s is empty, not an XGBoost JSON model", modelSrc)
	}
	xm, err := xgbmodel.Load(bytes.NewReader(modelJSON))
	if err != nil {
		// Checked only now: validating first cost an eighth of every start.
		if !json.Valid(modelJSON) {
			return nil, fmt.Errorf("model: %s is not valid JSON (truncated, or not an XGBoost JSON model saved with save_model(\"*.json\"))", modelSrc)
		}
		return nil, fmt.Errorf("model: %s is not a usable XGBoost model: %w", modelSrc, err)
	}
	var lf labelsFile
	dec := json.NewDecoder(bytes.NewReader(labelsJSON))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&lf); err != nil {
		return nil, fmt.Errorf("labels: %s: %w", labelsSrc, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("labels: %s: unexpected data after the JSON object", labelsSrc)
	}
	if len(lf.Classes) != xm.NumClasses() {
		return nil, fmt.Errorf("labels: %s lists %d classes but model %s has %d outputs", labelsSrc, len(lf.Classes), modelSrc, xm.NumClasses())
	}
	seen := map[string]bool{}
	for _, c := range lf.Classes {
		if c == "" {
			return nil, fmt.Errorf("labels: %s: empty class name", labelsSrc)
		}
		if seen[c] {
			return nil, fmt.Errorf("labels: %s: class %q listed twice", labelsSrc, c)
		}
		seen[c] = true
	}
	benign := slices.Index(lf.Classes, lf.Benign)
	if lf.Benign == "" || benign < 0 {
		return nil, fmt.Errorf("labels: %s: benign class %q is not one of the classes %v", labelsSrc, lf.Benign, lf.Classes)
	}
	features, err := featureNames(xm, modelSrc, lf.FeatureNames, labelsSrc)
	if err != nil {
		return nil, err
	}
	quoted := make([][]byte, len(lf.Classes))
	for i, c := range lf.Classes {
		quoted[i], _ = json.Marshal(c) // a string always marshals
	}
	sum := sha256.Sum256(modelJSON)
	return &model{quoted: quoted,
		m: xm, classes: lf.Classes, benign: benign, features: features, windows: lf.Windows, minScore: lf.MinScore,
		source: modelSrc, id: hex.EncodeToString(sum[:6]),
	}, nil
}

// featureNames reconciles the model's own feature names with labels.json's
// and checks that the SDK knows each of them.
func featureNames(xm *xgbmodel.Model, modelSrc string, fromLabels []string, labelsSrc string) ([]string, error) {
	names := xm.FeatureNames()
	switch {
	case names == nil && fromLabels == nil:
		return nil, fmt.Errorf("model: %s stores no feature names and %s has no feature_names; the detector needs to know which feature is which", modelSrc, labelsSrc)
	case names == nil:
		names = fromLabels
	case fromLabels != nil && !slices.Equal(names, fromLabels):
		return nil, fmt.Errorf("labels: feature_names of %s differ from the feature names stored in model %s", labelsSrc, modelSrc)
	}
	if len(names) != xm.NumFeatures() {
		return nil, fmt.Errorf("model: %s has %d inputs but %d feature names", modelSrc, xm.NumFeatures(), len(names))
	}
	for _, n := range names {
		if !sdk.KnownFeature(n) {
			return nil, fmt.Errorf("model: %s uses feature %q, which is not a NetGuardian feature (schema version %d); train it on the names in sdk.Features", modelSrc, n, sdk.FeatureSchemaVersion)
		}
	}
	return names, nil
}
