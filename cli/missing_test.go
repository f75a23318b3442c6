package cli

import (
	"errors"
	"fmt"
	"testing"

	"github.com/goferhq/gofer/client"
	"github.com/goferhq/gofer/store/model"
)

// A refusal that lists missing values prints one line per value, with its
// fix; other errors are left as they are.
func TestMissingValuesPrintOnePerLine(t *testing.T) {
	apiErr := &client.Error{Status: 409, Code: "conflict", Message: "pipeline \"deploy\" did not start a run: …", Missing: []model.MissingValue{
		{Kind: "pipeline_secret", Key: "api_key", Problem: "does not exist", Fix: "gofer secret pipeline put deploy api_key VALUE -n default",
			UsedBy: []string{"build.API_KEY", "push.API_KEY"}},
		{Kind: "pipeline_object", Key: "settings", Problem: "does not exist", Fix: "gofer pipeline object put deploy settings FILE -n default",
			UsedBy: []string{"build.SETTINGS"}},
	}}
	got := explainMissing(fmt.Errorf("start: %w", apiErr)).Error()
	want := "2 secrets or objects are not there; fix each, then try again:\n" +
		`  pipeline_secret "api_key" does not exist (used by build.API_KEY, push.API_KEY): gofer secret pipeline put deploy api_key VALUE -n default` + "\n" +
		`  pipeline_object "settings" does not exist (used by build.SETTINGS): gofer pipeline object put deploy settings FILE -n default`
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if err := explainMissing(apiErr); !errors.Is(err, apiErr) {
		t.Fatalf("the API error is not kept: %v", err)
	}
	plain := &client.Error{Status: 409, Message: "pipeline is disabled"}
	if err := explainMissing(plain); err != plain {
		t.Fatalf("an error without a list changed: %v", err)
	}
}
