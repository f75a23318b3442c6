package local

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	sdk "github.com/goferhq/gofer/sdk/go"
)

// interpolate returns a copy of the config with every marker replaced by
// its value, and the secret values (to mask in output). It reports every
// missing value at once. Tasks get no API token locally.
func interpolate(opts Options) (*sdk.PipelineConfig, []string, error) {
	raw, err := json.Marshal(opts.Config)
	if err != nil {
		return nil, nil, err
	}
	var cfg sdk.PipelineConfig
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, nil, err
	}
	sources := map[string]struct {
		values map[string]string
		flag   string
		secret bool
	}{
		"pipeline_secret": {opts.PipelineSecrets, "--secret", true},
		"global_secret":   {opts.GlobalSecrets, "--global-secret", true},
		"pipeline_object": {opts.PipelineObjects, "--object", false},
		"run_object":      {opts.RunObjects, "--run-object", false},
	}
	var missing []string
	var secrets []string
	for _, t := range cfg.Tasks {
		// There is no API to give a token for: the task runs without
		// GOFER_TOKEN, as documented.
		t.InjectAPIToken = false
		for _, name := range sortedKeys(t.Variables) {
			kind, key, ok := sdk.ParseMarker(t.Variables[name])
			if !ok {
				continue
			}
			src := sources[kind]
			v, ok := src.values[key]
			if !ok {
				missing = append(missing, fmt.Sprintf("task %q variable %s needs %s %q: pass %s %s=VALUE or add it to the values file",
					t.ID, name, kind, key, src.flag, key))
				continue
			}
			t.Variables[name] = v
			if src.secret { // the masker ignores values too short to mask
				secrets = append(secrets, v)
			}
		}
	}
	if len(missing) > 0 {
		return nil, nil, fmt.Errorf("%w:\n  %s", ErrMissingValues, strings.Join(missing, "\n  "))
	}
	return &cfg, secrets, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
