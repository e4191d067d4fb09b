// Package host starts and supervises plugin processes: it finds plugin
// binaries, verifies their SHA-256, launches them through the SDK's
// protocol, checks their health and restarts them with backoff when they
// die, re-sending whatever they had not acknowledged.
package host

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ErrNotFound is returned when a plugin binary does not exist.
var ErrNotFound = errors.New("plugin not found")

// ErrChecksum is returned when a plugin binary's SHA-256 differs from the
// one the config pins.
var ErrChecksum = errors.New("plugin checksum mismatch")

// Resolve finds the binary for ref: a path when ref contains a slash,
// else a name looked up in dir.
func Resolve(ref, dir string) (string, error) {
	path := ref
	if !strings.ContainsRune(ref, '/') {
		path = filepath.Join(dir, ref)
	}
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if !strings.ContainsRune(ref, '/') {
			return "", fmt.Errorf("%w: no %q in plugin_dir %q (run `make build`, or give a path)", ErrNotFound, ref, dir)
		}
		return "", fmt.Errorf("%w: %s does not exist", ErrNotFound, path)
	case err != nil:
		return "", fmt.Errorf("plugin %s: %w", path, err)
	case st.IsDir():
		return "", fmt.Errorf("plugin %s is a directory", path)
	case st.Mode()&0o111 == 0:
		return "", fmt.Errorf("plugin %s is not executable", path)
	}
	return path, nil
}

// Hash returns the hex SHA-256 of the file at path.
func Hash(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Verify checks path against the pinned hex SHA-256 want (empty = no pin).
func Verify(path, want string) error {
	if want == "" {
		return nil
	}
	got, err := Hash(path)
	if err != nil {
		return err
	}
	if !strings.EqualFold(got, strings.TrimSpace(want)) {
		return fmt.Errorf("%w: %s has sha256 %s, but the config pins %s; if you rebuilt or upgraded it on purpose, update sha256 (`netguardian plugins hash %s`)", ErrChecksum, path, got, want, path)
	}
	return nil
}

// Discover lists the executable files in dir, sorted by name.
func Discover(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("plugin_dir: %w", err)
	}
	var out []string
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || info.IsDir() || info.Mode()&0o111 == 0 {
			continue
		}
		out = append(out, filepath.Join(dir, e.Name()))
	}
	sort.Strings(out)
	return out, nil
}
