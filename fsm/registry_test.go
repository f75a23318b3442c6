package fsm

import (
	"go/ast"
	"go/parser"
	"go/token"
	"regexp"
	"strings"
	"testing"
)

// TestEveryCommandNumberIsRegisteredOrRetired: numbers are written into
// logs forever, so a gap is either a retired number (listed with why) or a
// mistake; each registered command has a unique snake_case name, an
// applier, and String() gives that name.
func TestEveryCommandNumberIsRegisteredOrRetired(t *testing.T) {
	byNumber := map[CommandType]commandSpec{}
	names := map[string]CommandType{}
	highest := CommandType(0)
	snake := regexp.MustCompile(`^[a-z]+(_[a-z]+)*$`)
	for _, s := range commandSpecs {
		n := s.t &^ IgnoreUnknownFlag
		if prev, dup := byNumber[n]; dup {
			t.Errorf("number %d is used by both %s and %s", n, prev.name, s.name)
		}
		byNumber[n] = s
		if other, dup := names[s.name]; dup {
			t.Errorf("name %q is used by %d and %d", s.name, other, s.t)
		}
		names[s.name] = s.t
		if !snake.MatchString(s.name) {
			t.Errorf("command %d: name %q is not snake_case", s.t, s.name)
		}
		if s.apply == nil {
			t.Errorf("command %s has no applier", s.name)
		}
		if got := s.t.String(); got != s.name {
			t.Errorf("CommandType(%d).String() = %q, want %q", s.t, got, s.name)
		}
		highest = max(highest, n)
	}
	for n := CommandType(1); n <= highest; n++ {
		_, registered := byNumber[n]
		_, retired := retiredCommands[n]
		_, elsewhere := numberedElsewhere[n]
		switch {
		case !registered && !retired && !elsewhere:
			t.Errorf("command number %d is neither registered nor retired", n)
		case registered && retired:
			t.Errorf("command number %d is registered and retired", n)
		}
	}
	if got := CommandType(IgnoreUnknownFlag | 0x7f).String(); !strings.HasPrefix(got, "unknown(") {
		t.Errorf("an unregistered type prints %q", got)
	}
}

// numberedElsewhere are numbers a change developed alongside this one
// takes (55: run retention); once both are merged it registers them and
// this entry goes.
var numberedElsewhere = map[CommandType]string{55: "run retention"}

// TestEveryCommandConstantIsRegistered parses command.go so a Cmd constant
// added without its registry entry fails here, not at the first apply.
func TestEveryCommandConstantIsRegistered(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "command.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string]bool{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			for _, name := range spec.(*ast.ValueSpec).Names {
				if strings.HasPrefix(name.Name, "Cmd") {
					consts[name.Name] = true
				}
			}
		}
	}
	if len(consts) != len(commandSpecs) {
		t.Errorf("command.go declares %d Cmd constants, the registry has %d entries", len(consts), len(commandSpecs))
	}
	if len(consts) < 40 {
		t.Fatalf("found only %d Cmd constants in command.go; the parse is wrong", len(consts))
	}
}

// TestTraitsOfKnownCommands pins the traits whose omission is silent: an
// auth command that forgot changesAuth would keep stale identities cached.
func TestTraitsOfKnownCommands(t *testing.T) {
	for _, c := range []CommandType{CmdClusterInit, CmdTokenBootstrap, CmdTokenCreate, CmdTokenSetDisabled,
		CmdTokenDelete, CmdRoleCreate, CmdRoleUpdate, CmdRoleDelete} {
		if !commands[c].changesAuth {
			t.Errorf("%s must bump the auth generation", c)
		}
	}
	for _, c := range []CommandType{CmdRunCreate, CmdRunStart, CmdTaskSchedule, CmdTaskRunning, CmdTaskFinish,
		CmdTaskResolve, CmdRunFinish, CmdRunCancel, CmdTaskCancel, CmdConfigDeploy, CmdPipelineSetState,
		CmdPipelineDelete, CmdNamespaceDelete, CmdSystemUpdate} {
		if commands[c].quiet {
			t.Errorf("%s changes run progress and must wake the executor", c)
		}
	}
	for _, c := range []CommandType{CmdPrune, CmdLogsExpireOptional} {
		if !commands[c].optional() {
			t.Errorf("%s should be optional", c)
		}
	}
}
