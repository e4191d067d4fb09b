package config

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/agext/levenshtein"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/netguardian/netguardian/sdk"
)

// The core's attribute names per block. Each is read by the matching
// decode function below; the lists feed the schema, so an attribute added
// here but never decoded is caught by TestEveryAttributeDecoded.
var (
	sensorAttrs      = []string{"name", "plugin_dir", "log_level", "log_format", "spool_dir", "spool_max_mib"}
	apiAttrs         = []string{"listen", "token", "allowed_origins", "snapshot_interval", "active_for"}
	aggregationAttrs = []string{"lateness", "idle_timeout", "max_sources", "distinct_exact_limit"}
	pipelineAttrs    = []string{"batch_size", "flush_interval", "queue_depth", "drop_raw_packets"}
	pluginAttrs      = []string{"plugin", "sha256", "enabled", "env"}
)

var rootSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "sensor"},
		{Type: "api"},
		{Type: "aggregation"},
		{Type: "pipeline"},
		{Type: string(sdk.KindCapture), LabelNames: []string{"name"}},
		{Type: string(sdk.KindDetector), LabelNames: []string{"name"}},
		{Type: string(sdk.KindSink), LabelNames: []string{"name"}},
	},
}

// labelRe restricts plugin block names: they appear in logs, metrics
// labels and API URLs, where spaces and punctuation cause trouble.
var labelRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// decode fills c from the file's body; attributes not written keep the
// defaults c already holds.
func (c *Config) decode(body hcl.Body, ctx *hcl.EvalContext) hcl.Diagnostics {
	content, diags := body.Content(rootSchema)
	seen := map[string]hcl.Range{} // singleton blocks and "kind\x00label"
	for _, block := range content.Blocks {
		switch block.Type {
		case "sensor", "api", "aggregation", "pipeline":
			if prev, dup := seen[block.Type]; dup {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  fmt.Sprintf("Duplicate %s block", block.Type),
					Detail:   fmt.Sprintf("Only one %s block is allowed; the first one is at %s.", block.Type, prev),
					Subject:  block.DefRange.Ptr(),
				})
				continue
			}
			seen[block.Type] = block.DefRange
			c.ranges[block.Type] = block.DefRange
			diags = append(diags, c.decodeCoreBlock(block, ctx)...)
		default:
			pb, ok, moreDiags := decodePluginBlock(block, ctx, seen)
			diags = append(diags, moreDiags...)
			if !ok {
				continue
			}
			switch pb.Kind {
			case sdk.KindCapture:
				c.Captures = append(c.Captures, pb)
			case sdk.KindDetector:
				c.Detectors = append(c.Detectors, pb)
			case sdk.KindSink:
				c.Sinks = append(c.Sinks, pb)
			}
		}
	}
	return diags
}

func (c *Config) decodeCoreBlock(block *hcl.Block, ctx *hcl.EvalContext) hcl.Diagnostics {
	var names []string
	switch block.Type {
	case "sensor":
		names = sensorAttrs
	case "api":
		names = apiAttrs
	case "aggregation":
		names = aggregationAttrs
	case "pipeline":
		names = pipelineAttrs
	}
	content, diags := block.Body.Content(attrSchema(names))
	d := &blockDecoder{prefix: block.Type + ".", attrs: content.Attributes, ctx: ctx, ranges: c.ranges}
	switch block.Type {
	case "sensor":
		s := &c.Sensor
		d.str("name", &s.Name, nonEmpty)
		d.str("plugin_dir", &s.PluginDir, nonEmpty)
		var level string
		if d.str("log_level", &level, oneOf("debug", "info", "warn", "error")) {
			_ = s.LogLevel.UnmarshalText([]byte(level)) // cannot fail: oneOf checked it
		}
		d.str("log_format", &s.LogFormat, oneOf("text", "json"))
		d.str("spool_dir", &s.SpoolDir, nonEmpty)
		d.integer("spool_max_mib", &s.SpoolMaxMiB)
	case "api":
		a := &c.API
		d.str("listen", &a.Listen, checkListen)
		d.str("token", &a.Token, nil)
		d.strings("allowed_origins", &a.AllowedOrigins, normalizeOrigin)
		d.duration("snapshot_interval", &a.SnapshotInterval, false)
		d.duration("active_for", &a.ActiveFor, false)
	case "aggregation":
		a := &c.Aggregation
		d.duration("lateness", &a.Lateness, true)
		d.duration("idle_timeout", &a.IdleTimeout, false)
		d.integer("max_sources", &a.MaxSources)
		d.integer("distinct_exact_limit", &a.DistinctExactLimit)
	case "pipeline":
		p := &c.Pipeline
		d.integer("batch_size", &p.BatchSize)
		d.duration("flush_interval", &p.FlushInterval, false)
		d.integer("queue_depth", &p.QueueDepth)
		d.boolean("drop_raw_packets", &p.DropRawPackets)
	}
	return append(diags, d.diags...)
}

// decodePluginBlock decodes a capture, detector or sink block; seen holds
// the labels already used, to report duplicates. ok is false when the block
// is too broken to keep.
func decodePluginBlock(block *hcl.Block, ctx *hcl.EvalContext, seen map[string]hcl.Range) (PluginBlock, bool, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	if len(block.Labels) != 1 { // Content already reported it
		return PluginBlock{}, false, nil
	}
	kind, name := sdk.Kind(block.Type), block.Labels[0]
	pb := PluginBlock{
		Kind:      kind,
		Name:      name,
		Enabled:   true,
		Body:      hcl.EmptyBody(),
		DeclRange: block.DefRange,
		ctx:       ctx,
	}
	if !labelRe.MatchString(name) {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("Invalid %s name", kind),
			Detail:   fmt.Sprintf("The name %q cannot be used: names appear in logs, metrics and URLs, so they are 1 to 64 letters, digits, '_', '-' or '.', starting with a letter or digit.", name),
			Subject:  block.LabelRanges[0].Ptr(),
		})
	}
	key := block.Type + "\x00" + name
	if prev, dup := seen[key]; dup {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("Duplicate %s block %q", kind, name),
			Detail:   fmt.Sprintf("A %s block named %q is already defined at %s; each %s needs its own name.", kind, name, prev, kind),
			Subject:  block.LabelRanges[0].Ptr(),
		})
	} else {
		seen[key] = block.DefRange
	}

	schema := attrSchema(pluginAttrs)
	schema.Blocks = []hcl.BlockHeaderSchema{{Type: "config"}}
	content, moreDiags := block.Body.Content(schema)
	diags = append(diags, moreDiags...)

	d := &blockDecoder{prefix: fmt.Sprintf("%s.%s.", kind, name), attrs: content.Attributes, ctx: ctx}
	if attr, ok := content.Attributes["plugin"]; ok {
		pb.PluginRange = attr.Expr.Range()
		d.str("plugin", &pb.Plugin, checkPluginRef)
	} else {
		pb.PluginRange = block.DefRange
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Missing required argument",
			Detail:   fmt.Sprintf("The %s block %q needs a plugin argument: the name of a plugin in sensor.plugin_dir, such as plugin = \"capture-pcap\", or a path containing '/'.", kind, name),
			Subject:  block.DefRange.Ptr(),
		})
	}
	if d.str("sha256", &pb.SHA256, checkSHA256) {
		pb.SHA256 = strings.ToLower(pb.SHA256)
	}
	d.boolean("enabled", &pb.Enabled)
	diags = append(diags, d.diags...)
	if attr, ok := content.Attributes["env"]; ok {
		env, envDiags := decodePluginEnv(attr, ctx, fmt.Sprintf("%s.%s.env", kind, name))
		pb.Env = env
		diags = append(diags, envDiags...)
	}

	for i, cb := range content.Blocks {
		if i == 0 {
			pb.Body = cb.Body
			pb.configRange = cb.DefRange
			continue
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Duplicate config block",
			Detail:   fmt.Sprintf("The %s block %q already has a config block at %s; put all its settings in that one.", kind, name, content.Blocks[0].DefRange),
			Subject:  cb.DefRange.Ptr(),
		})
	}
	return pb, true, diags
}

func attrSchema(names []string) *hcl.BodySchema {
	s := &hcl.BodySchema{}
	for _, n := range names {
		s.Attributes = append(s.Attributes, hcl.AttributeSchema{Name: n})
	}
	return s
}

// blockDecoder reads typed attributes of one block into Go values,
// reporting at most one diagnostic per attribute. Each method returns true
// when it stored a value; an absent or null attribute leaves dst (the
// default) untouched.
type blockDecoder struct {
	prefix string // "api." or "capture.replay.", for messages
	attrs  hcl.Attributes
	ctx    *hcl.EvalContext
	ranges map[string]hcl.Range // where to record value ranges; may be nil
	diags  hcl.Diagnostics
}

func (d *blockDecoder) get(name string, ty cty.Type) (cty.Value, *hcl.Attribute) {
	attr, ok := d.attrs[name]
	if !ok {
		return cty.NilVal, nil
	}
	if d.ranges != nil {
		d.ranges[d.prefix+name] = attr.Expr.Range()
	}
	v, diags := evalAttr(attr, ty, d.ctx)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() || v.IsNull() {
		return cty.NilVal, nil
	}
	return v, attr
}

func (d *blockDecoder) invalid(attr *hcl.Attribute, detail string) {
	d.diags = append(d.diags, invalidValue(d.prefix+attr.Name, attr, detail))
}

func invalidValue(qualified string, attr *hcl.Attribute, detail string) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Invalid value for " + qualified,
		Detail:   detail,
		Subject:  attr.Expr.Range().Ptr(),
		Context:  hcl.RangeBetween(attr.NameRange, attr.Expr.Range()).Ptr(),
	}
}

// str decodes a string; check, when set, may rewrite it or reject it with
// a message that becomes the diagnostic's detail.
func (d *blockDecoder) str(name string, dst *string, check func(string) (string, error)) bool {
	v, attr := d.get(name, cty.String)
	if attr == nil {
		return false
	}
	s := v.AsString()
	if check != nil {
		var err error
		if s, err = check(s); err != nil {
			d.invalid(attr, sentence(fmt.Sprintf("%s%s %v", d.prefix, name, err)))
			return false
		}
	}
	*dst = s
	return true
}

func (d *blockDecoder) strings(name string, dst *[]string, check func(string) (string, error)) bool {
	v, attr := d.get(name, cty.List(cty.String))
	if attr == nil {
		return false
	}
	out := []string{}
	for it := v.ElementIterator(); it.Next(); {
		i, ev := it.Element()
		s := ev.AsString()
		if check != nil {
			var err error
			if s, err = check(s); err != nil {
				idx, _ := i.AsBigFloat().Int64()
				d.invalid(attr, sentence(fmt.Sprintf("Element %d of %s%s %v", idx, d.prefix, name, err)))
				return false
			}
		}
		out = append(out, s)
	}
	*dst = out
	return true
}

// integer decodes a positive whole number that fits an int.
func (d *blockDecoder) integer(name string, dst *int) bool {
	v, attr := d.get(name, cty.Number)
	if attr == nil {
		return false
	}
	bf := v.AsBigFloat()
	n, acc := bf.Int64()
	switch {
	case !bf.IsInt():
		d.invalid(attr, fmt.Sprintf("%s%s must be a whole number, got %s.", d.prefix, name, bf.Text('g', -1)))
		return false
	case acc != big.Exact || n > math.MaxInt32:
		// MaxInt32 is far above any sensible count and keeps arithmetic on
		// these values from overflowing.
		d.invalid(attr, fmt.Sprintf("%s%s must be at most %d, got %s.", d.prefix, name, math.MaxInt32, bf.Text('g', -1)))
		return false
	case n <= 0:
		d.invalid(attr, fmt.Sprintf("%s%s must be greater than zero, got %d.", d.prefix, name, n))
		return false
	}
	*dst = int(n)
	return true
}

// duration decodes a duration string; zero is accepted only when allowZero.
func (d *blockDecoder) duration(name string, dst *time.Duration, allowZero bool) bool {
	v, attr := d.get(name, cty.String)
	if attr == nil {
		return false
	}
	dur, err := parseDuration(v.AsString())
	switch {
	case err != nil:
		d.diags = append(d.diags, invalidDuration(d.prefix+name, attr, err))
		return false
	case dur < 0:
		d.invalid(attr, fmt.Sprintf("%s%s must not be negative, got %s.", d.prefix, name, dur))
		return false
	case dur == 0 && !allowZero:
		d.invalid(attr, fmt.Sprintf("%s%s must be longer than zero.", d.prefix, name))
		return false
	}
	*dst = dur
	return true
}

func (d *blockDecoder) boolean(name string, dst *bool) bool {
	v, attr := d.get(name, cty.Bool)
	if attr == nil {
		return false
	}
	*dst = v.True()
	return true
}

// evalAttr evaluates an attribute and converts it to ty, with one
// diagnostic for any problem. A null value is returned as a null of ty:
// callers treat it as "not set". Null elements inside a list or map are
// rejected, since plugins could not tell them from empty strings or zeros.
func evalAttr(attr *hcl.Attribute, ty cty.Type, ctx *hcl.EvalContext) (cty.Value, hcl.Diagnostics) {
	val, diags := attr.Expr.Value(ctx)
	if diags.HasErrors() {
		return cty.NilVal, diags
	}
	if val.IsNull() {
		return cty.NullVal(ty), diags
	}
	conv, err := convert.Convert(val, ty)
	if err != nil {
		return cty.NilVal, append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Incorrect attribute value type",
			Detail:   fmt.Sprintf("Inappropriate value for attribute %q: %s.", attr.Name, describeConvertError(err)),
			Subject:  attr.Expr.Range().Ptr(),
			Context:  hcl.RangeBetween(attr.NameRange, attr.Expr.Range()).Ptr(),
		})
	}
	if !conv.IsWhollyKnown() { // cannot happen without variables; kept as a guard
		return cty.NilVal, append(diags, invalidValue(attr.Name, attr, fmt.Sprintf("The value of %q cannot be determined.", attr.Name)))
	}
	if ty.IsListType() || ty.IsMapType() {
		for it := conv.ElementIterator(); it.Next(); {
			k, ev := it.Element()
			if !ev.IsNull() {
				continue
			}
			var where string
			if ty.IsListType() {
				idx, _ := k.AsBigFloat().Int64()
				where = fmt.Sprintf("element %d", idx)
			} else {
				where = "key " + strconv.Quote(k.AsString())
			}
			return cty.NilVal, append(diags, invalidValue(attr.Name, attr, fmt.Sprintf("The %s of %q is null; remove it or give it a value.", where, attr.Name)))
		}
	}
	return conv, diags
}

// describeConvertError adds the failing element to cty's message ("a
// number is required" alone does not say which list element is wrong).
func describeConvertError(err error) string {
	var where []string
	if pe, ok := err.(cty.PathError); ok {
		for _, step := range pe.Path {
			idx, ok := step.(cty.IndexStep)
			if !ok {
				continue
			}
			switch idx.Key.Type() {
			case cty.Number:
				n, _ := idx.Key.AsBigFloat().Int64()
				where = append(where, fmt.Sprintf("element %d", n))
			case cty.String:
				where = append(where, "key "+strconv.Quote(idx.Key.AsString()))
			}
		}
	}
	if len(where) == 0 {
		return err.Error()
	}
	return strings.Join(where, ", ") + ": " + err.Error()
}

// parseDuration is time.ParseDuration with a message that shows the syntax.
func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration; write a number with a unit, such as \"500ms\", \"2s\", \"5m\" or \"1h30m\"", s)
	}
	return d, nil
}

func invalidDuration(qualified string, attr *hcl.Attribute, err error) *hcl.Diagnostic {
	diag := invalidValue(qualified, attr, fmt.Sprintf("%s: %v.", qualified, err))
	diag.Summary = "Invalid duration"
	return diag
}

// Value checks used by the decoders. Their errors read as the end of a
// sentence that starts with the attribute's name.

func nonEmpty(s string) (string, error) {
	if strings.TrimSpace(s) == "" {
		return "", errors.New("must not be empty")
	}
	return s, nil
}

func oneOf(allowed ...string) func(string) (string, error) {
	return func(s string) (string, error) {
		for _, a := range allowed {
			if s == a {
				return s, nil
			}
		}
		quoted := make([]string, len(allowed))
		for i, a := range allowed {
			quoted[i] = strconv.Quote(a)
		}
		msg := fmt.Sprintf("must be one of %s; got %q", strings.Join(quoted, ", "), s)
		if sug := nameSuggestion(strings.ToLower(s), allowed); sug != "" {
			msg += fmt.Sprintf(". Did you mean %q?", sug)
		}
		return "", errors.New(msg)
	}
}

// nameSuggestion returns the first candidate within edit distance 2 of
// given, the rule HCL itself uses for "Did you mean".
func nameSuggestion(given string, candidates []string) string {
	for _, c := range candidates {
		if levenshtein.Distance(given, c, nil) < 3 {
			return c
		}
	}
	return ""
}

func checkListen(s string) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("must be host:port, such as \"127.0.0.1:5000\" or \"[::1]:5000\"; got %q", s)
	}
	if strings.ContainsAny(host, " \t/") {
		return "", fmt.Errorf("has an invalid host %q", host)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return "", fmt.Errorf("must end with a port number from 0 to 65535; got %q", port)
	}
	return s, nil
}

// normalizeOrigin accepts a browser origin, scheme://host[:port], and
// lower-cases it the way browsers send it in the Origin header.
func normalizeOrigin(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return "", fmt.Errorf("must be an origin such as \"https://noc.example.com\" or \"http://localhost:8080\"; got %q", s)
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("must be only scheme://host[:port], without user, path, query or fragment; got %q (write %q)", s, u.Scheme+"://"+u.Host)
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

func checkPluginRef(s string) (string, error) {
	switch strings.TrimSpace(s) {
	case "":
		return "", fmt.Errorf("must name a plugin, such as \"capture-pcap\", or be a path containing '/'")
	case ".", "..":
		return "", fmt.Errorf("must name a plugin file, not the directory %q", s)
	}
	return s, nil
}

func checkSHA256(s string) (string, error) {
	if len(s) != 64 {
		return "", fmt.Errorf("must be 64 hexadecimal digits (the output of sha256sum), got %d characters", len(s))
	}
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return "", fmt.Errorf("must be 64 hexadecimal digits (the output of sha256sum); %q is not one", r)
		}
	}
	return s, nil
}

// sentence ends s with a period unless it already ends a sentence.
func sentence(s string) string {
	if strings.HasSuffix(s, ".") || strings.HasSuffix(s, "?") {
		return s
	}
	return s + "."
}
