// Package fastjsontest fills every field of a record, so that the tests of
// a hand-written encoder or decoder (internal/fastjson's users) notice a
// field added to the record later: the hand code lists fields one by one,
// and an omitempty field it does not know would be dropped without a test
// failing, because the tests only set the fields that existed when they
// were written.
package fastjsontest

import (
	"reflect"
	"testing"
)

// FillEveryField sets every exported field of the struct ptr points to,
// recursively, to a non-zero value derived from its name and position.
// It fails the test on a field kind it cannot fill, so a new kind of field
// makes someone look at the hand code.
func FillEveryField(t testing.TB, ptr any) {
	t.Helper()
	v := reflect.ValueOf(ptr)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		t.Fatalf("FillEveryField wants a pointer to a struct, got %T", ptr)
	}
	fill(t, v.Elem(), v.Elem().Type().Name())
}

func fill(t testing.TB, v reflect.Value, path string) {
	t.Helper()
	switch v.Kind() {
	case reflect.String:
		v.SetString("x-" + path)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(len(path)))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(len(path)))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(t, p.Elem(), path)
		v.Set(p)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(t, s.Index(0), path+"[0]")
		v.Set(s)
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			t.Fatalf("%s: map keyed by %s: the hand code may not cover it", path, v.Type().Key())
		}
		m := reflect.MakeMap(v.Type())
		val := reflect.New(v.Type().Elem()).Elem()
		if val.Kind() == reflect.Interface {
			val.Set(reflect.ValueOf("v-" + path))
		} else {
			fill(t, val, path+"[k]")
		}
		m.SetMapIndex(reflect.ValueOf("k-"+path).Convert(v.Type().Key()), val)
		v.Set(m)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if f := v.Type().Field(i); f.IsExported() {
				fill(t, v.Field(i), path+"."+f.Name)
			}
		}
	default:
		t.Fatalf("%s: field of kind %s: the hand code may not cover it", path, v.Kind())
	}
}
