package model

import (
	"encoding/json"
	"testing"
)

// A deployment stored before states were lower-cased holds upstream's
// PascalCase spelling; it must read back lower-case.
func TestDeploymentDecodesOldPascalCase(t *testing.T) {
	old := `{"namespace_id":"default","pipeline_id":"dag","deployment_id":1,"start_version":0,"end_version":1,
		"started":1,"ended":2,"state":"Complete","status":"Successful","actor":"admin"}`
	var d Deployment
	if err := json.Unmarshal([]byte(old), &d); err != nil {
		t.Fatal(err)
	}
	if d.State != DeploymentStateComplete || d.Status != DeploymentStatusSuccess {
		t.Fatalf("state %q status %q, want %q %q", d.State, d.Status, DeploymentStateComplete, DeploymentStatusSuccess)
	}
	for _, s := range []string{`"Running"`, `"running"`} {
		var st DeploymentState
		if err := json.Unmarshal([]byte(s), &st); err != nil || st != DeploymentStateRunning {
			t.Errorf("%s decoded to %q (%v), want %q", s, st, err, DeploymentStateRunning)
		}
	}
	b, _ := json.Marshal(d)
	var back map[string]any
	_ = json.Unmarshal(b, &back)
	if back["state"] != "complete" || back["status"] != "successful" {
		t.Errorf("encoded %s, want lower-case state and status", b)
	}
	if err := json.Unmarshal([]byte(`{"state":3}`), &d); err == nil {
		t.Error("a number as state decoded without error")
	}
}
