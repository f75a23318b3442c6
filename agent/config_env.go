package agent

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// ApplyEnv overlays GOFER_WEB_<SECTION>__<KEY> variables from environ
// (KEY=VALUE strings) onto cfg. Keys are the TOML names upper-cased; list
// values are comma-separated. An unknown GOFER_WEB_ variable is an error,
// so a typo does not silently leave a default in place.
func ApplyEnv(cfg *Config, environ []string) error {
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		path := strings.Split(strings.ToLower(strings.TrimPrefix(name, EnvPrefix)), "__")
		field, err := fieldByTOMLPath(reflect.ValueOf(cfg).Elem(), path)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := setFromString(field, value); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

func fieldByTOMLPath(v reflect.Value, path []string) (reflect.Value, error) {
	for i, part := range path {
		if v.Kind() != reflect.Struct {
			return reflect.Value{}, fmt.Errorf("%q is not a section", strings.Join(path[:i], "."))
		}
		found := false
		for j := 0; j < v.NumField(); j++ {
			if tag, _, _ := strings.Cut(v.Type().Field(j).Tag.Get("toml"), ","); tag == part {
				v, found = v.Field(j), true
				break
			}
		}
		if !found {
			return reflect.Value{}, fmt.Errorf("unknown setting %q", strings.Join(path[:i+1], "."))
		}
	}
	if v.Kind() == reflect.Struct {
		return reflect.Value{}, fmt.Errorf("%q is a section, not a setting", strings.Join(path, "."))
	}
	return v, nil
}

func setFromString(v reflect.Value, s string) error {
	if u, ok := v.Addr().Interface().(interface{ UnmarshalText([]byte) error }); ok {
		return u.UnmarshalText([]byte(s))
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("want true or false, got %q", s)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("want an integer, got %q", s)
		}
		v.SetInt(n)
	case reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return fmt.Errorf("want a non-negative integer, got %q", s)
		}
		v.SetUint(n)
	case reflect.Slice:
		var parts []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		v.Set(reflect.ValueOf(parts))
	default:
		return fmt.Errorf("unsupported setting type %s", v.Type())
	}
	return nil
}
