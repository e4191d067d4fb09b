package config

import (
	"encoding/json"
	"fmt"
	"math"
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
