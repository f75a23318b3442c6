package model

import (
	"encoding/json"
	"testing"
)

// Details decode numbers exactly (no float64 on the way) and events stored
// before details were typed, with every value a string, read the same
// through String, Int and Bool.
func TestEventDetailsDecodeOldAndNew(t *testing.T) {
	for _, raw := range []string{
		`{"id":7,"kind":"completed_task_execution","details":{"run_id":"9007199254740993","exit_code":"0","range":"true","task_id":"aaa"}}`,
		`{"id":7,"kind":"completed_task_execution","details":{"run_id":9007199254740993,"exit_code":0,"range":true,"task_id":"aaa"}}`,
	} {
		var e Event
		if err := json.Unmarshal([]byte(raw), &e); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		d := e.Details
		if n, ok := d.Int("run_id"); !ok || n != 9007199254740993 {
			t.Errorf("%s: run_id %d (%v), want 9007199254740993 exactly", raw, n, ok)
		}
		if n, ok := d.Int("exit_code"); !ok || n != 0 {
			t.Errorf("%s: exit_code %d (%v)", raw, n, ok)
		}
		if !d.Bool("range") || d.String("task_id") != "aaa" || d.String("run_id") != "9007199254740993" || d.String("absent") != "" {
			t.Errorf("%s: read back %#v", raw, d)
		}
		if _, ok := d.Int("task_id"); ok {
			t.Errorf("%s: task_id read as an integer", raw)
		}
	}
	b, _ := json.Marshal(EventDetails{"run_id": int64(3), "ok": true, "key": "k"})
	if string(b) != `{"key":"k","ok":true,"run_id":3}` {
		t.Errorf("encoded %s", b)
	}
}
