package model

// MissingValue is one secret or object that markers name
// (pipeline_secret{{KEY}} and its kin) and that is not there, or may not be
// used where it is named. A refused run start lists them all in its error
// ("missing"), and a task that fails on them names them all, so a user
// fixes every one at once instead of one per run.
type MissingValue struct {
	// Kind is the marker's kind: pipeline_secret, global_secret,
	// pipeline_object or run_object.
	Kind string `json:"kind"`
	Key  string `json:"key"`
	// Problem says what is wrong ("does not exist", or the namespace a
	// global secret does not allow).
	Problem string `json:"problem"`
	// Fix is the command (or, where no command can help, the change) that
	// makes the value available.
	Fix string `json:"fix"`
	// UsedBy names where the marker is used: "TASK.VARIABLE".
	UsedBy []string `json:"used_by"`
}
