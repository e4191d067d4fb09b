package sdk

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"
)

// AttrType is the type of a config attribute.
type AttrType string

const (
	TypeString     AttrType = "string"
	TypeNumber     AttrType = "number"
	TypeBool       AttrType = "bool"
	TypeDuration   AttrType = "duration" // written as a string such as "5s" or "1h30m"
	TypeListString AttrType = "list(string)"
	TypeListNumber AttrType = "list(number)"
	TypeMapString  AttrType = "map(string)"
)

// Valid reports whether t is one of the known attribute types.
func (t AttrType) Valid() bool {
	switch t {
	case TypeString, TypeNumber, TypeBool, TypeDuration, TypeListString, TypeListNumber, TypeMapString:
		return true
	}
	return false
}

// Attribute describes one attribute of a plugin's config block.
type Attribute struct {
	Name        string
	Type        AttrType
	Required    bool
	Default     any // a value of the attribute's Go form: string, float64, bool, []string...
	Description string
	// Sensitive values (passwords, tokens, URLs with credentials) are never logged.
	Sensitive bool
}

// Schema is the list of attributes a plugin's config block accepts.
type Schema []Attribute

// Lookup returns the attribute called name.
func (s Schema) Lookup(name string) (Attribute, bool) {
	for _, a := range s {
		if a.Name == name {
			return a, true
		}
	}
	return Attribute{}, false
}

// Config is a plugin's decoded config block plus the core's runtime settings.
type Config struct {
	// JSON holds the block's attributes, defaults applied, as a JSON object.
	// Durations are strings ("5s").
	JSON    []byte
	Runtime Runtime
}

// Decode fills the struct pointed to by v from the config. Fields are
// matched by their `ng` tag (see SchemaOf); time.Duration fields accept
// duration strings.
func (c Config) Decode(v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("sdk: Decode needs a pointer to a struct, got %T", v)
	}
	raw := map[string]json.RawMessage{}
	if len(c.JSON) > 0 {
		if err := json.Unmarshal(c.JSON, &raw); err != nil {
			return fmt.Errorf("config: %w", err)
		}
	}
	return forEachField(rv.Elem(), func(f reflect.Value, tag fieldTag) error {
		msg, ok := raw[tag.name]
		if !ok || string(msg) == "null" {
			return nil
		}
		if f.Type() == durationType {
			var s string
			if err := json.Unmarshal(msg, &s); err != nil {
				return fmt.Errorf("config %q: want a duration string: %w", tag.name, err)
			}
			d, err := time.ParseDuration(s)
			if err != nil {
				return fmt.Errorf("config %q: %w", tag.name, err)
			}
			f.SetInt(int64(d))
			return nil
		}
		if err := json.Unmarshal(msg, f.Addr().Interface()); err != nil {
			return fmt.Errorf("config %q: %w", tag.name, err)
		}
		return nil
	})
}

var durationType = reflect.TypeOf(time.Duration(0))

type fieldTag struct {
	name     string
	required bool
	secret   bool
}

// SchemaOf derives a Schema from a struct's tags, so a plugin declares its
// config once:
//
//	type config struct {
//		Model    string        `ng:"model,required" help:"path of the XGBoost JSON model"`
//		MinScore float64       `ng:"min_score" help:"lowest score that raises an alert"`
//		Timeout  time.Duration `ng:"timeout"`
//		Password string        `ng:"password,sensitive"`
//	}
//
// The field values of defaults become the attributes' defaults (zero values
// are not shown as defaults).
func SchemaOf(defaults any) Schema {
	rv := reflect.ValueOf(defaults)
	if rv.Kind() == reflect.Pointer {
		rv = rv.Elem()
	}
	var s Schema
	_ = forEachField(rv, func(f reflect.Value, tag fieldTag) error {
		sf := fieldByTag(rv.Type(), tag.name)
		a := Attribute{Name: tag.name, Type: typeOf(f.Type()), Required: tag.required, Description: sf.Tag.Get("help"), Sensitive: tag.secret}
		if !f.IsZero() {
			if f.Type() == durationType {
				a.Default = time.Duration(f.Int()).String()
			} else {
				a.Default = f.Interface()
			}
		}
		s = append(s, a)
		return nil
	})
	return s
}

func fieldByTag(t reflect.Type, name string) reflect.StructField {
	for i := 0; i < t.NumField(); i++ {
		if parseTag(t.Field(i).Tag.Get("ng")).name == name {
			return t.Field(i)
		}
	}
	return reflect.StructField{}
}

func parseTag(s string) fieldTag {
	parts := strings.Split(s, ",")
	t := fieldTag{name: parts[0]}
	for _, p := range parts[1:] {
		switch p {
		case "required":
			t.required = true
		case "sensitive":
			t.secret = true
		}
	}
	return t
}

func forEachField(rv reflect.Value, fn func(reflect.Value, fieldTag) error) error {
	t := rv.Type()
	for i := 0; i < t.NumField(); i++ {
		tag := parseTag(t.Field(i).Tag.Get("ng"))
		if tag.name == "" || tag.name == "-" || !t.Field(i).IsExported() {
			continue
		}
		if err := fn(rv.Field(i), tag); err != nil {
			return err
		}
	}
	return nil
}

func typeOf(t reflect.Type) AttrType {
	if t == durationType {
		return TypeDuration
	}
	switch t.Kind() {
	case reflect.String:
		return TypeString
	case reflect.Bool:
		return TypeBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return TypeNumber
	case reflect.Slice:
		if typeOf(t.Elem()) == TypeNumber {
			return TypeListNumber
		}
		return TypeListString
	case reflect.Map:
		return TypeMapString
	}
	return TypeString
}
