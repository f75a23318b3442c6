package fsm

import "fmt"

// commandSpec describes one command type once: its number, its name (in
// logs and, later, metrics), the applier, and the traits the apply loop
// acts on. Adding a command is a constant in command.go and one entry in
// commandSpecs; every lookup below derives from that entry.
type commandSpec struct {
	t     CommandType
	name  string
	apply applier
	// changesAuth: applying it may change who may do what, so the API's
	// cached identities are dropped (the auth generation is bumped).
	// Forgetting it would keep a deleted token or role working from cache.
	changesAuth bool
	// quiet: it changes no run's or task's progress, so it does not wake
	// the executor (FSM.RunChanges). When in doubt leave it loud: a
	// spurious wake costs one reconcile pass, a missed one stalls a run.
	quiet bool
	// keyRotation: it starts, advances or finishes an encryption key
	// rotation (FSM.KeyRotationChanges wakes the key rotator).
	keyRotation bool
}

// optional says an older node may skip the command (IgnoreUnknownFlag).
func (s commandSpec) optional() bool { return s.t&IgnoreUnknownFlag != 0 }

// commandSpecs is every command type this build applies, in number order.
var commandSpecs = []commandSpec{
	{t: CmdClusterInit, name: "cluster_init", apply: applyClusterInit, changesAuth: true},
	{t: CmdServerUpsert, name: "server_upsert", apply: applyServerUpsert},
	{t: CmdServerRemove, name: "server_remove", apply: applyServerRemove},
	{t: CmdNamespaceCreate, name: "namespace_create", apply: applyNamespaceCreate, quiet: true},
	{t: CmdNamespaceUpdate, name: "namespace_update", apply: applyNamespaceUpdate, quiet: true},
	// A namespace delete removes its pipelines and runs: loud.
	{t: CmdNamespaceDelete, name: "namespace_delete", apply: applyNamespaceDelete},
	{t: CmdConfigRegister, name: "config_register", apply: applyConfigRegister},
	{t: CmdConfigDeploy, name: "config_deploy", apply: applyConfigDeploy},
	{t: CmdConfigDelete, name: "config_delete", apply: applyConfigDelete},
	{t: CmdPipelineSetState, name: "pipeline_set_state", apply: applyPipelineSetState},
	{t: CmdPipelineDelete, name: "pipeline_delete", apply: applyPipelineDelete},
	{t: CmdTokenBootstrap, name: "token_bootstrap", apply: applyTokenBootstrap, changesAuth: true, quiet: true},
	{t: CmdTokenCreate, name: "token_create", apply: applyTokenCreate, changesAuth: true, quiet: true},
	{t: CmdTokenSetDisabled, name: "token_set_disabled", apply: applyTokenSetDisabled, changesAuth: true, quiet: true},
	{t: CmdTokenDelete, name: "token_delete", apply: applyTokenDelete, changesAuth: true, quiet: true},
	{t: CmdRoleCreate, name: "role_create", apply: applyRoleCreate, changesAuth: true, quiet: true},
	{t: CmdRoleUpdate, name: "role_update", apply: applyRoleUpdate, changesAuth: true, quiet: true},
	// Leaders issue CmdRoleDeleteDetach; 18 replays from existing logs.
	{t: CmdRoleDelete, name: "role_delete", apply: applyRoleDelete, changesAuth: true, quiet: true},
	{t: CmdSystemUpdate, name: "system_update", apply: applySystemUpdate},
	{t: CmdPrune, name: "prune", apply: applyPrune, quiet: true},
	{t: CmdEventDelete, name: "event_delete", apply: applyEventDelete, quiet: true},
	{t: CmdRunCreate, name: "run_create", apply: applyRunCreate},
	{t: CmdRunStart, name: "run_start", apply: applyRunStart},
	{t: CmdTaskSchedule, name: "task_schedule", apply: applyTaskSchedule},
	{t: CmdTaskRunning, name: "task_running", apply: applyTaskRunning},
	{t: CmdTaskFinish, name: "task_finish", apply: applyTaskFinish},
	{t: CmdTaskResolve, name: "task_resolve", apply: applyTaskResolve},
	{t: CmdRunFinish, name: "run_finish", apply: applyRunFinish},
	{t: CmdRunCancel, name: "run_cancel", apply: applyRunCancel},
	{t: CmdTaskCancel, name: "task_cancel", apply: applyTaskCancel},
	{t: CmdLogAppend, name: "log_append", apply: applyLogAppend, quiet: true},
	{t: CmdLogsDelete, name: "logs_delete", apply: applyLogsDelete, quiet: true},
	{t: CmdLogsExpireOptional, name: "logs_expire_optional", apply: applyLogsExpire, quiet: true},
	{t: CmdSecretPut, name: "secret_put", apply: applySecretPut, quiet: true},
	{t: CmdSecretDelete, name: "secret_delete", apply: applySecretDelete, quiet: true},
	{t: CmdObjectPut, name: "object_put", apply: applyObjectPut, quiet: true},
	{t: CmdObjectDelete, name: "object_delete", apply: applyObjectDelete, quiet: true},
	{t: CmdRunObjectsExpire, name: "run_objects_expire", apply: applyRunObjectsExpire, quiet: true},
	{t: CmdLogsExpire, name: "logs_expire", apply: applyLogsExpire, quiet: true},
	{t: CmdKeyRotationStart, name: "key_rotation_start", apply: applyKeyRotationStart, quiet: true, keyRotation: true},
	{t: CmdSecretsReseal, name: "secrets_reseal", apply: applySecretsReseal, quiet: true, keyRotation: true},
	{t: CmdKeyRotationFinish, name: "key_rotation_finish", apply: applyKeyRotationFinish, quiet: true, keyRotation: true},
	{t: CmdRoleDeleteDetach, name: "role_delete_detach", apply: applyRoleDeleteDetach, changesAuth: true, quiet: true},
	// Install and delete change the extension's role and token; a status
	// change decides whether its token may start runs.
	{t: CmdExtensionInstall, name: "extension_install", apply: applyExtensionInstall, changesAuth: true, quiet: true},
	{t: CmdExtensionSetStatus, name: "extension_set_status", apply: applyExtensionSetStatus, changesAuth: true, quiet: true},
	{t: CmdExtensionDelete, name: "extension_delete", apply: applyExtensionDelete, changesAuth: true, quiet: true},
	{t: CmdSubscriptionCreate, name: "subscription_create", apply: applySubscriptionCreate, quiet: true},
	{t: CmdSubscriptionSetStatus, name: "subscription_set_status", apply: applySubscriptionSetStatus, quiet: true},
	{t: CmdSubscriptionDelete, name: "subscription_delete", apply: applySubscriptionDelete, quiet: true},
	// The supervisor's observations change no run and grant nothing.
	{t: CmdExtensionSetState, name: "extension_set_state", apply: applyExtensionSetState, quiet: true},
	// Installs make roles and tokens, like CmdExtensionInstall.
	{t: CmdExtensionStdInstall, name: "extension_std_install", apply: applyExtensionStdInstall, changesAuth: true, quiet: true},
	{t: CmdTriggerSkip, name: "trigger_skip", apply: applyTriggerSkip, quiet: true},
	// A promote changes which version new runs use: loud.
	{t: CmdDeploymentDecide, name: "deployment_decide", apply: applyDeploymentDecide},
	// Audit records change nothing but the event log.
	{t: CmdAuditRecord, name: "audit_record", apply: applyAuditRecord, quiet: true},
	// Only finished runs are deleted: no run's progress changes.
	{t: CmdRunsDelete, name: "runs_delete", apply: applyRunsDelete, quiet: true},
	// Changes no answer, so it wakes nothing.
	{t: CmdTasksSlim, name: "tasks_slim", apply: applyTasksSlim, quiet: true},
}

// retiredCommands are numbers no build issues any more and no log can
// hold; they must never be reused. (None yet: a retired number is listed
// here with why, so the registry test can tell a gap from a mistake.)
var retiredCommands = map[CommandType]string{}

// commands indexes commandSpecs by type; built once at start.
var commands = indexCommands(commandSpecs)

func indexCommands(specs []commandSpec) map[CommandType]commandSpec {
	out := make(map[CommandType]commandSpec, len(specs))
	for _, s := range specs {
		if _, dup := out[s.t]; dup {
			panic(fmt.Sprintf("fsm: command type %d registered twice", s.t))
		}
		if _, retired := retiredCommands[s.t]; retired {
			panic(fmt.Sprintf("fsm: command type %d is retired and cannot be reused", s.t))
		}
		out[s.t] = s
	}
	return out
}

// String names the command type ("task_finish"), or "unknown(N)".
func (t CommandType) String() string {
	if s, ok := commands[t]; ok {
		return s.name
	}
	return fmt.Sprintf("unknown(%d)", byte(t))
}
