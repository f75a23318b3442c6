// Package store is Gofer's bbolt schema: bucket names, key encoding and
// typed read/write helpers that operate on a *bbolt.Tx.
//
// Only the FSM opens write transactions (through DB.Update); everyone else
// reads through DB.View. Keys are composite ids joined by NUL (ids can never
// contain NUL) and numbers are big-endian, so bbolt cursors iterate in id
// and version order and a prefix scan finds one pipeline's children.
//
// Task executions come in two stored forms (taskconfig.go): fat records,
// written by entries before envelope version 6, embed their task's config;
// slim ones name their run's config version ("pipeline_config_version")
// instead. GetTask, ListTasks, ListTasksPage and TaskDecoder fill the task in
// either way, so readers see one form; GetTaskRecord and ListTaskRecords
// (the FSM's) do not, and PutTask writes a record back in the form it has.
// config_refs counts, per config version, the slim records that name it
// (configrefs.go); a counted version survives its deletion in
// retained_configs until DeleteRun removes the last record naming it.
// taskslim.go rewrites fat records slim (the tasks_slim command).
package store
