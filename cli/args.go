package cli

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// normalizeArgs lets users write flags anywhere, as most CLIs allow:
// `gofer namespace create team-a --name "Team A" -o json`. urfave/cli v2
// stops reading flags at the first positional argument and only knows
// global flags before the command, so argv is rewritten into the order it
// expects: program, global flags, command path, command flags,
// positionals. Everything after "--" is left alone.
func normalizeArgs(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	globals := flagTable(app.Flags)
	var (
		globalArgs []string
		path       []string
		cmdArgs    []string
		positional []string
		cmds       = app.Commands
		local      = map[string]bool{}
	)
	rest := args[1:]
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			positional = append(positional, rest[i:]...)
			break
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			name, hasValue := flagName(a)
			takesValue, isLocal := local[name]
			target := &cmdArgs
			if !isLocal {
				if tv, ok := globals[name]; ok {
					takesValue, target = tv, &globalArgs
				}
			}
			*target = append(*target, a)
			if takesValue && !hasValue && i+1 < len(rest) {
				i++
				*target = append(*target, rest[i])
			}
			continue
		}
		if len(positional) == 0 {
			if cmd := findCommand(cmds, a); cmd != nil {
				path = append(path, a)
				cmds = cmd.Subcommands
				local = flagTable(cmd.Flags)
				continue
			}
		}
		positional = append(positional, a)
	}
	out := append([]string{args[0]}, globalArgs...)
	out = append(out, path...)
	out = append(out, cmdArgs...)
	return append(out, positional...)
}

// flagTable maps every flag name and alias to whether it takes a value.
func flagTable(flags []cli.Flag) map[string]bool {
	t := map[string]bool{}
	for _, f := range flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			t[n] = !isBool
		}
	}
	t["help"], t["h"] = false, false
	return t
}

// flagName strips dashes and any "=value".
func flagName(arg string) (name string, hasValue bool) {
	name = strings.TrimLeft(arg, "-")
	if i := strings.IndexByte(name, '='); i >= 0 {
		return name[:i], true
	}
	return name, false
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.Name == name {
			return c
		}
		for _, a := range c.Aliases {
			if a == name {
				return c
			}
		}
	}
	return nil
}
