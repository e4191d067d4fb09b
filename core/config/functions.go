package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// maxFileSize bounds what file() reads: it is meant for tokens, passwords
// and certificates, and the bound keeps file("/dev/zero") from eating memory.
const maxFileSize = 1 << 20

// evalContext is the context every expression in a config file is evaluated
// in: no variables, only env() and file(), the latter resolving relative
// paths against baseDir (the config file's directory).
func evalContext(baseDir string) *hcl.EvalContext {
	return &hcl.EvalContext{
		Functions: map[string]function.Function{
			"env":  envFunc,
			"file": fileFunc(baseDir),
		},
	}
}

// envFunc is env(name) or env(name, default). A variable set to the empty
// string counts as set: an operator who exports NETGUARDIAN_API_TOKEN=""
// meant it.
var envFunc = function.New(&function.Spec{
	Description: "Returns the value of an environment variable, or the default when it is not set.",
	Params:      []function.Parameter{{Name: "name", Type: cty.String}},
	VarParam:    &function.Parameter{Name: "default", Type: cty.String},
	Type:        function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		if len(args) > 2 {
			return cty.NilVal, function.NewArgErrorf(2, "env takes a variable name and at most one default value, got %d arguments", len(args))
		}
		name := args[0].AsString()
		if name == "" {
			return cty.NilVal, function.NewArgErrorf(0, "the environment variable name must not be empty")
		}
		if v, ok := os.LookupEnv(name); ok {
			if !utf8.ValidString(v) {
				return cty.NilVal, function.NewArgErrorf(0, "environment variable %q is not valid UTF-8", name)
			}
			return cty.StringVal(v), nil
		}
		if len(args) == 2 {
			return args[1], nil
		}
		return cty.NilVal, function.NewArgErrorf(0, "environment variable %q is not set, and no default was given (write env(%q, \"default\") to make it optional)", name, name)
	},
})

// fileFunc is file(path), relative to baseDir.
func fileFunc(baseDir string) function.Function {
	return function.New(&function.Spec{
		Description: "Returns the contents of a file; a relative path is relative to the config file's directory.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			p := args[0].AsString()
			if p == "" {
				return cty.NilVal, function.NewArgErrorf(0, "the file path must not be empty")
			}
			full := p
			if !filepath.IsAbs(full) {
				full = filepath.Join(baseDir, full)
			}
			data, err := readSmallFile(full)
			if err != nil {
				return cty.NilVal, function.NewArgErrorf(0, "read %q: %s", p, describeFileError(full, err))
			}
			if !utf8.Valid(data) {
				return cty.NilVal, function.NewArgErrorf(0, "%q is not UTF-8 text", p)
			}
			return cty.StringVal(string(data)), nil
		},
	})
}

var (
	errTooLarge   = errors.New("file is larger than 1 MiB")
	errNotRegular = errors.New("not a regular file")
)

func readSmallFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// Devices and FIFOs could block or never end; directories fail later
	// with a less clear message.
	if st, err := f.Stat(); err != nil {
		return nil, err
	} else if !st.Mode().IsRegular() {
		return nil, errNotRegular
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, errTooLarge
	}
	return data, nil
}

// describeFileError says what went wrong without the *PathError prefix,
// and names the resolved path when it differs from what was written.
func describeFileError(full string, err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Sprintf("%v (resolved to %s)", err, full)
}
