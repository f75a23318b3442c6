package openapi

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"
	"unicode"
)

// Schema is an OpenAPI 3.0 schema object, the subset the generator writes.
type Schema struct {
	Ref                  string             `json:"$ref,omitempty"`
	Type                 string             `json:"type,omitempty"`
	Format               string             `json:"format,omitempty"`
	Description          string             `json:"description,omitempty"`
	Nullable             bool               `json:"nullable,omitempty"`
	Enum                 []string           `json:"enum,omitempty"`
	Properties           map[string]*Schema `json:"properties,omitempty"`
	Required             []string           `json:"required,omitempty"`
	Items                *Schema            `json:"items,omitempty"`
	AdditionalProperties *Schema            `json:"additionalProperties,omitempty"`
}

// Override answers the schema of a type the reflection cannot see through
// (one with its own MarshalJSON); ok=false leaves the type to reflection.
type Override func(t reflect.Type) (s *Schema, ok bool)

// schemas turns Go types into schemas, collecting named struct types as
// components. Names are the types' own; a second type of the same name
// from another package is prefixed with its package's name.
type schemas struct {
	components map[string]*Schema
	names      map[reflect.Type]string
	override   Override
}

func newSchemas(o Override) *schemas {
	return &schemas{components: map[string]*Schema{}, names: map[reflect.Type]string{}, override: o}
}

var (
	timeType      = reflect.TypeOf(time.Time{})
	durationType  = reflect.TypeOf(time.Duration(0))
	rawType       = reflect.TypeOf(json.RawMessage(nil))
	marshalerType = reflect.TypeOf((*json.Marshaler)(nil)).Elem()
	textType      = reflect.TypeOf((*encoding.TextMarshaler)(nil)).Elem()
)

// of is the schema of values of t, a $ref for a named struct type.
func (g *schemas) of(t reflect.Type) *Schema {
	if g.override != nil {
		if s, ok := g.override(t); ok {
			return s
		}
	}
	switch t {
	case timeType:
		return &Schema{Type: "string", Format: "date-time"}
	case durationType:
		return &Schema{Type: "integer", Format: "int64", Description: "nanoseconds"}
	case rawType:
		return &Schema{Description: "any JSON value"}
	}
	if t.Kind() == reflect.Pointer {
		s := g.of(t.Elem())
		if s.Ref != "" {
			// A $ref takes no siblings in OpenAPI 3.0.
			return s
		}
		c := *s
		c.Nullable = true
		return &c
	}
	if t.Implements(marshalerType) || reflect.PointerTo(t).Implements(marshalerType) {
		panic(fmt.Sprintf("openapi: %s has its own MarshalJSON; give its schema with an Override", t))
	}
	if t.Implements(textType) || reflect.PointerTo(t).Implements(textType) {
		return &Schema{Type: "string"}
	}
	switch t.Kind() {
	case reflect.Bool:
		return &Schema{Type: "boolean"}
	case reflect.Int, reflect.Int64, reflect.Uint, reflect.Uint64, reflect.Uintptr:
		return &Schema{Type: "integer", Format: "int64"}
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Uint8, reflect.Uint16, reflect.Uint32:
		return &Schema{Type: "integer", Format: "int32"}
	case reflect.Float32:
		return &Schema{Type: "number", Format: "float"}
	case reflect.Float64:
		return &Schema{Type: "number", Format: "double"}
	case reflect.String:
		return &Schema{Type: "string"}
	case reflect.Interface:
		return &Schema{Description: "any JSON value"}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 && t.Kind() == reflect.Slice {
			return &Schema{Type: "string", Format: "byte"}
		}
		return &Schema{Type: "array", Items: g.of(t.Elem())}
	case reflect.Map:
		return &Schema{Type: "object", AdditionalProperties: g.of(t.Elem())}
	case reflect.Struct:
		if t.Name() == "" {
			return g.object(t)
		}
		return &Schema{Ref: "#/components/schemas/" + g.component(t)}
	}
	panic(fmt.Sprintf("openapi: no schema for %s", t))
}

// component registers the named struct type t and answers its name.
func (g *schemas) component(t reflect.Type) string {
	if n, ok := g.names[t]; ok {
		return n
	}
	name := exported(t.Name())
	if _, taken := g.components[name]; taken {
		pkg := t.PkgPath()
		name = exported(pkg[strings.LastIndex(pkg, "/")+1:]) + name
	}
	g.names[t] = name
	g.components[name] = &Schema{} // reserve: t may refer to itself
	*g.components[name] = *g.object(t)
	return name
}

func exported(s string) string {
	if s == "" {
		return s
	}
	r := []rune(s)
	r[0] = unicode.ToUpper(r[0])
	return string(r)
}

// object is the inline schema of struct type t.
func (g *schemas) object(t reflect.Type) *Schema {
	s := &Schema{Type: "object", Properties: map[string]*Schema{}}
	for _, f := range JSONFields(t) {
		fs := g.of(f.Type)
		if f.String {
			fs = &Schema{Type: "string", Description: "a number as a string"}
		}
		s.Properties[f.Name] = fs
		if !f.OmitEmpty {
			s.Required = append(s.Required, f.Name)
		}
	}
	return s
}

// Field is one JSON field of a struct type, as encoding/json writes it.
type Field struct {
	Name      string
	Type      reflect.Type
	OmitEmpty bool
	String    bool
	index     []int
	tagged    bool
}

// JSONFields lists the fields encoding/json writes for struct type t, in
// its order, embedded structs' fields promoted by its rules: the
// shallowest field of a name wins, a tagged one over an untagged one at
// the same depth, and a name that stays ambiguous is left out.
func JSONFields(t reflect.Type) []Field {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var all []Field
	var walk func(t reflect.Type, index []int, seen map[reflect.Type]bool)
	walk = func(t reflect.Type, index []int, seen map[reflect.Type]bool) {
		if seen[t] {
			return
		}
		seen[t] = true
		for i := range t.NumField() {
			sf := t.Field(i)
			tag := sf.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			idx := append(append([]int(nil), index...), i)
			ft := sf.Type
			if sf.Anonymous {
				et := ft
				if et.Kind() == reflect.Pointer {
					et = et.Elem()
				}
				if !sf.IsExported() && et.Kind() != reflect.Struct {
					continue
				}
				if name == "" && et.Kind() == reflect.Struct {
					walk(et, idx, seen)
					continue
				}
			} else if !sf.IsExported() {
				continue
			}
			f := Field{Name: name, Type: ft, index: idx, tagged: name != ""}
			if f.Name == "" {
				f.Name = sf.Name
			}
			for _, o := range strings.Split(opts, ",") {
				switch o {
				case "omitempty", "omitzero":
					f.OmitEmpty = true
				case "string":
					switch ft.Kind() {
					case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
						reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
						reflect.Float32, reflect.Float64:
						f.String = true
					}
				}
			}
			all = append(all, f)
		}
		delete(seen, t)
	}
	walk(t, nil, map[reflect.Type]bool{})

	byName := map[string][]Field{}
	var order []string
	for _, f := range all {
		if _, ok := byName[f.Name]; !ok {
			order = append(order, f.Name)
		}
		byName[f.Name] = append(byName[f.Name], f)
	}
	var out []Field
	for _, name := range order {
		if f, ok := dominant(byName[name]); ok {
			out = append(out, f)
		}
	}
	return out
}

// dominant picks the field encoding/json writes among those of one name.
func dominant(fs []Field) (Field, bool) {
	depth := len(fs[0].index)
	for _, f := range fs {
		depth = min(depth, len(f.index))
	}
	var top, tagged []Field
	for _, f := range fs {
		if len(f.index) == depth {
			top = append(top, f)
			if f.tagged {
				tagged = append(tagged, f)
			}
		}
	}
	switch {
	case len(tagged) == 1:
		return tagged[0], true
	case len(tagged) == 0 && len(top) == 1:
		return top[0], true
	}
	return Field{}, false
}
