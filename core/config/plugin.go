package config

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/netguardian/netguardian/sdk"
)

// DecodePluginConfig decodes a plugin block's config { } body against the
// schema the plugin described, and returns it as the JSON object the
// plugin's Configure receives (sdk.Config.JSON).
//
// The JSON has one member per attribute that is set or has a default, in
// key order; unset optional attributes without a default are left out.
// Numbers are JSON numbers, durations are validated and written in
// time.Duration.String form ("1m30s"), lists are arrays, maps objects.
//
// Mistakes in the body (unknown or misspelt arguments, wrong types, missing
// required arguments, nested blocks) are diagnostics at their place in the
// file. A schema the core cannot use (a plugin bug) is reported at the
// block's plugin argument. The JSON is nil when there are errors.
func DecodePluginConfig(b PluginBlock, schema sdk.Schema) ([]byte, hcl.Diagnostics) {
	defaults, diags := checkSchema(b, schema)
	if diags.HasErrors() {
		return nil, diags
	}
	body := b.Body
	if body == nil {
		body = hcl.EmptyBody()
	}
	ctx := b.ctx
	if ctx == nil { // a PluginBlock built by hand rather than by Parse
		ctx = evalContext(".")
	}
	missingAt := b.configRange
	if missingAt == (hcl.Range{}) {
		missingAt = b.DeclRange
	}

	hs := &hcl.BodySchema{}
	for _, a := range schema {
		hs.Attributes = append(hs.Attributes, hcl.AttributeSchema{Name: a.Name})
	}
	content, contentDiags := body.Content(hs)
	explainUnsupported(contentDiags, b, schema)
	diags = append(diags, contentDiags...)

	out := map[string]json.RawMessage{}
	for _, a := range schema {
		ty := ctyType(a.Type)
		v := cty.NullVal(ty)
		attr, written := content.Attributes[a.Name]
		if written {
			var attrDiags hcl.Diagnostics
			v, attrDiags = evalAttr(attr, ty, ctx)
			diags = append(diags, attrDiags...)
			if attrDiags.HasErrors() {
				continue
			}
			if !v.IsNull() {
				var err error
				if v, err = finishValue(a, v); err != nil {
					diag := invalidValue(a.Name, attr, sentence(fmt.Sprintf("%s: %v", a.Name, err)))
					if a.Type == sdk.TypeDuration {
						diag.Summary = "Invalid duration"
					}
					diags = append(diags, diag)
					continue
				}
			}
		}
		if v.IsNull() {
			switch {
			case a.Required && written:
				diags = append(diags, invalidValue(a.Name, attr, fmt.Sprintf("The argument %q is required; null is not a value for it.", a.Name)))
				continue
			case a.Required:
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Missing required argument",
					Detail:   fmt.Sprintf("The %s plugin %q requires the argument %q (%s) in the config block of %s %q.", b.Kind, b.Plugin, a.Name, describe(a), b.Kind, b.Name),
					Subject:  missingAt.Ptr(),
				})
				continue
			}
			d, ok := defaults[a.Name]
			if !ok {
				continue
			}
			v = d
		}
		raw, err := ctyjson.Marshal(v, ty)
		if err != nil { // finishValue rejected what JSON cannot hold, so this is a bug
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Cannot encode plugin configuration",
				Detail:   fmt.Sprintf("Encoding %q as JSON: %v.", a.Name, err),
				Subject:  missingAt.Ptr(),
			})
			continue
		}
		out[a.Name] = raw
	}
	if diags.HasErrors() {
		return nil, diags
	}
	js, err := json.Marshal(out)
	if err != nil {
		return nil, append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Cannot encode plugin configuration",
			Detail:   fmt.Sprintf("Encoding the config of %s %q as JSON: %v.", b.Kind, b.Name, err),
			Subject:  missingAt.Ptr(),
		})
	}
	return js, diags
}

// describe is an attribute's type, and its description when it has one.
func describe(a sdk.Attribute) string {
	if d := strings.TrimSpace(a.Description); d != "" {
		return string(a.Type) + ": " + d
	}
	return string(a.Type)
}

// checkSchema rejects schemas no config file could satisfy or the core
// could not decode, and converts the defaults.
func checkSchema(b PluginBlock, schema sdk.Schema) (map[string]cty.Value, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	at := b.PluginRange
	if at == (hcl.Range{}) {
		at = b.DeclRange
	}
	bad := func(format string, args ...any) {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid plugin schema",
			Detail: fmt.Sprintf("The %s plugin %q (used by %s %q) describes a config schema the core cannot use: %s. This is a bug in the plugin.",
				b.Kind, b.Plugin, b.Kind, b.Name, fmt.Sprintf(format, args...)),
			Subject: at.Ptr(),
		})
	}
	defaults := map[string]cty.Value{}
	seen := map[string]bool{}
	for _, a := range schema {
		switch {
		case !hclsyntax.ValidIdentifier(a.Name):
			bad("attribute name %q is not a valid HCL identifier", a.Name)
			continue
		case seen[a.Name]:
			bad("attribute %q is declared twice", a.Name)
			continue
		case !a.Type.Valid():
			bad("attribute %q has unknown type %q", a.Name, a.Type)
			continue
		}
		seen[a.Name] = true
		if a.Default == nil {
			continue
		}
		v, err := defaultValue(a)
		if err != nil {
			bad("the default of %q is not a %s: %v", a.Name, a.Type, err)
			continue
		}
		if !v.IsNull() {
			defaults[a.Name] = v
		}
	}
	return defaults, diags
}

// defaultValue converts an attribute's Go default through JSON, so any Go
// form works: []string or []any, int or float64, map[string]string...
func defaultValue(a sdk.Attribute) (cty.Value, error) {
	d := a.Default
	if dur, ok := d.(time.Duration); ok {
		d = dur.String()
	}
	raw, err := json.Marshal(d)
	if err != nil {
		return cty.NilVal, err
	}
	v, err := ctyjson.Unmarshal(raw, ctyType(a.Type))
	if err != nil {
		return cty.NilVal, fmt.Errorf("%s", describeConvertError(err))
	}
	if v.IsNull() {
		return v, nil
	}
	return finishValue(a, v)
}

// finishValue applies the checks cty's types cannot express: durations
// must parse (and are normalized), numbers must fit a float64 (JSON has no
// infinity), collections must not hold nulls.
func finishValue(a sdk.Attribute, v cty.Value) (cty.Value, error) {
	switch a.Type {
	case sdk.TypeDuration:
		d, err := parseDuration(v.AsString())
		if err != nil {
			return cty.NilVal, err
		}
		return cty.StringVal(d.String()), nil
	case sdk.TypeNumber:
		return v, checkFinite(v)
	case sdk.TypeListNumber, sdk.TypeListString, sdk.TypeMapString:
		for it := v.ElementIterator(); it.Next(); {
			_, ev := it.Element()
			if ev.IsNull() {
				return cty.NilVal, fmt.Errorf("null elements are not allowed")
			}
			if a.Type == sdk.TypeListNumber {
				if err := checkFinite(ev); err != nil {
					return cty.NilVal, err
				}
			}
		}
	}
	return v, nil
}

func checkFinite(v cty.Value) error {
	bf := v.AsBigFloat()
	f, _ := bf.Float64()
	if bf.IsInf() || math.IsInf(f, 0) {
		return fmt.Errorf("%s is out of range", bf.Text('g', 6))
	}
	return nil
}

func ctyType(t sdk.AttrType) cty.Type {
	switch t {
	case sdk.TypeNumber:
		return cty.Number
	case sdk.TypeBool:
		return cty.Bool
	case sdk.TypeListString:
		return cty.List(cty.String)
	case sdk.TypeListNumber:
		return cty.List(cty.Number)
	case sdk.TypeMapString:
		return cty.Map(cty.String)
	}
	return cty.String // string and duration
}

// explainUnsupported adds to HCL's "Unsupported argument/block" messages
// what the plugin accepts: the schema is in the plugin, not in front of the
// operator. HCL's "Did you mean" suggestion, when there is one, is kept as
// the whole hint.
func explainUnsupported(diags hcl.Diagnostics, b PluginBlock, schema sdk.Schema) {
	names := make([]string, 0, len(schema))
	for _, a := range schema {
		names = append(names, a.Name)
	}
	sort.Strings(names)
	accepts := fmt.Sprintf(" The %s plugin takes no settings.", b.Plugin)
	if len(names) > 0 {
		accepts = fmt.Sprintf(" The %s plugin accepts: %s.", b.Plugin, strings.Join(names, ", "))
	}
	for _, d := range diags {
		switch d.Summary {
		case "Unsupported argument":
			if !strings.Contains(d.Detail, "Did you mean") {
				d.Detail += accepts
			}
		case "Unsupported block type":
			if !strings.Contains(d.Detail, "Did you mean") {
				d.Detail += " A plugin's config block holds only arguments (name = value), not nested blocks." + accepts
			}
		}
	}
}

// Env is a plugin block's env = { NAME = "value" }: the variables its
// process gets besides PATH. Values may be secrets (a database password),
// so String, GoString, LogValue and MarshalJSON show the names only.
type Env map[string]string

// Names returns the variable names, sorted.
func (e Env) Names() []string {
	names := make([]string, 0, len(e))
	for n := range e {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Environ returns the variables as "NAME=value", sorted by name: the form
// os/exec takes.
func (e Env) Environ() []string {
	out := make([]string, 0, len(e))
	for _, n := range e.Names() {
		out = append(out, n+"="+e[n])
	}
	return out
}

// Equal reports whether e and o set the same variables to the same values
// (nil and empty are equal).
func (e Env) Equal(o Env) bool {
	if len(e) != len(o) {
		return false
	}
	for n, v := range e {
		if w, ok := o[n]; !ok || w != v {
			return false
		}
	}
	return true
}

// String lists the names with the values redacted.
func (e Env) String() string {
	parts := make([]string, 0, len(e))
	for _, n := range e.Names() {
		parts = append(parts, n+"="+redacted)
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// GoString is String for %#v, which would otherwise print the values.
func (e Env) GoString() string { return "config.Env" + e.String() }

// LogValue implements slog.LogValuer with the values redacted.
func (e Env) LogValue() slog.Value { return slog.StringValue(e.String()) }

// MarshalJSON writes the names with the values redacted.
func (e Env) MarshalJSON() ([]byte, error) {
	out := make(map[string]string, len(e))
	for n := range e {
		out[n] = redacted
	}
	return json.Marshal(out)
}

// redacted stands for a secret value in printed configs.
const redacted = "REDACTED"

// handshakeCookie is the variable go-plugin's handshake uses (sdk's
// MagicCookieKey); a plugin started with another value refuses to run.
const handshakeCookie = "NETGUARDIAN_PLUGIN"

// envNameRe is the POSIX portable form of an environment variable name.
var envNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// reservedEnv says why a name cannot be set from the config, or "".
func reservedEnv(name string) string {
	switch {
	case name == handshakeCookie:
		return "it is the plugin handshake's cookie, which the core sets itself"
	case strings.HasPrefix(name, "PLUGIN_"):
		return "names starting with PLUGIN_ carry the plugin handshake (ports, protocol versions, the mTLS certificate), which the core sets itself"
	}
	return ""
}

// decodePluginEnv decodes a plugin block's env attribute: a map of POSIX
// variable names to strings. Diagnostics name the variable, never its
// value, and point at its key when the map is written out in the block.
func decodePluginEnv(attr *hcl.Attribute, ctx *hcl.EvalContext, qualified string) (Env, hcl.Diagnostics) {
	v, diags := evalAttr(attr, cty.Map(cty.String), ctx)
	if diags.HasErrors() || v.IsNull() {
		return nil, diags
	}
	env := Env{}
	for it := v.ElementIterator(); it.Next(); {
		k, ev := it.Element()
		name, value := k.AsString(), ev.AsString()
		bad := func(detail string) {
			d := invalidValue(qualified, attr, detail)
			d.Subject = envKeyRange(attr, ctx, name).Ptr()
			diags = append(diags, d)
		}
		switch {
		case !envNameRe.MatchString(name):
			bad(fmt.Sprintf("%s: %q is not an environment variable name; use letters, digits and '_', not starting with a digit (for example DATABASE_URL).", qualified, name))
			continue
		case reservedEnv(name) != "":
			bad(fmt.Sprintf("%s: %s cannot be set: %s.", qualified, name, reservedEnv(name)))
			continue
		case strings.ContainsRune(value, 0):
			bad(fmt.Sprintf("%s: the value of %s contains a NUL byte, which an environment variable cannot hold.", qualified, name))
			continue
		}
		env[name] = value
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return env, diags
}

// envKeyRange is where the variable name is written, when the env map is
// an object written out in the block; else the whole expression.
func envKeyRange(attr *hcl.Attribute, ctx *hcl.EvalContext, name string) hcl.Range {
	if oc, ok := attr.Expr.(*hclsyntax.ObjectConsExpr); ok {
		for _, item := range oc.Items {
			k, diags := item.KeyExpr.Value(ctx)
			if !diags.HasErrors() && k.Type() == cty.String && k.IsKnown() && !k.IsNull() && k.AsString() == name {
				return item.KeyExpr.Range()
			}
		}
	}
	return attr.Expr.Range()
}
