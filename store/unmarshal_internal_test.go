package store

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/goferhq/gofer/internal/fastjson/fastjsontest"
	"github.com/goferhq/gofer/store/model"
)

// unmarshalRecord decodes what json.Unmarshal decodes and refuses what it
// refuses, for the records with their own UnmarshalJSON and for others.
func TestUnmarshalRecordIsJSONUnmarshal(t *testing.T) {
	var run model.Run
	fastjsontest.FillEveryField(t, &run)
	var task model.TaskExecution
	fastjsontest.FillEveryField(t, &task)
	task.VariableSources = nil // never stored
	run.VariableSources = nil
	var cfg model.PipelineConfig
	fastjsontest.FillEveryField(t, &cfg)
	var ns model.Namespace
	fastjsontest.FillEveryField(t, &ns)
	for _, rec := range []any{&run, &task, &cfg, &ns} {
		raw, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		inputs := [][]byte{raw, raw[:len(raw)/2], append(append([]byte{}, raw...), '}'), []byte(`{"run_id":"x"}`), []byte(`null`), []byte(`{}`)}
		for _, in := range inputs {
			typ := reflect.TypeOf(rec).Elem()
			got, want := reflect.New(typ).Interface(), reflect.New(typ).Interface()
			gotErr, wantErr := unmarshalRecord(in, got), json.Unmarshal(in, want)
			if (gotErr == nil) != (wantErr == nil) {
				t.Fatalf("%T from %.60s: unmarshalRecord err %v, json.Unmarshal err %v", rec, in, gotErr, wantErr)
			}
			if gotErr == nil && !reflect.DeepEqual(got, want) {
				t.Fatalf("%T from %.60s: unmarshalRecord %+v, json.Unmarshal %+v", rec, in, got, want)
			}
		}
	}
}
