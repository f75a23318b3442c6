package cli

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/goferhq/gofer/internal/docsync"
)

// The command reference in docs/cli.md is generated from the command tree
// App builds, so the docs list exactly what the binary accepts.

var updateDocs = flag.Bool("update", false, "rewrite the generated section of docs/cli.md")

const (
	cliReferenceSection    = "gofer cli reference"
	cliReferenceRegenerate = "go test ./cli -run TestCLIReference -update   (or: make docs)"
)

// TestCLIReference fails when docs/cli.md's generated command reference
// differs from the command tree; with -update it rewrites it.
func TestCLIReference(t *testing.T) {
	app := App(Build{Version: "docs", Commit: "docs"}, io.Discard, io.Discard)
	docsync.Check(t, "../docs/cli.md", cliReferenceSection, cliReference(app), *updateDocs, cliReferenceRegenerate)
}

// TestEveryCommandAndFlagIsDescribed keeps the reference useful: a command
// or flag without a one-line usage would show up in it as a bare name.
func TestEveryCommandAndFlagIsDescribed(t *testing.T) {
	app := App(Build{}, io.Discard, io.Discard)
	for _, f := range app.Flags {
		if usage(f) == "" {
			t.Errorf("global flag %s has no Usage", flagNames(f))
		}
	}
	for _, e := range walkCommands(app.Commands, "gofer", false) {
		if strings.TrimSpace(e.cmd.Usage) == "" {
			t.Errorf("%s has no Usage (its one-line description)", e.path)
		}
		for _, f := range e.cmd.Flags {
			if usage(f) == "" {
				t.Errorf("%s: flag %s has no Usage", e.path, flagNames(f))
			}
		}
	}
}

// commandEntry is one command of the tree with its full name.
type commandEntry struct {
	path     string // "gofer pipeline run"
	depth    int    // 1 for top-level commands
	cmd      *cli.Command
	internal bool // hidden from --help, or below a hidden command
}

// walkCommands lists the tree depth first, in the order --help shows it.
func walkCommands(cmds []*cli.Command, parent string, internal bool) []commandEntry {
	var out []commandEntry
	depth := strings.Count(parent, " ") + 1
	for _, c := range cmds {
		e := commandEntry{path: parent + " " + c.Name, depth: depth, cmd: c, internal: internal || c.Hidden}
		out = append(out, e)
		out = append(out, walkCommands(c.Subcommands, e.path, e.internal)...)
	}
	return out
}

// cliReference renders the command reference of app as Markdown.
func cliReference(app *cli.App) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<!-- Generated from the command definitions in cli/*.go; do not edit. Regenerate: %s -->\n\n", cliReferenceRegenerate)
	b.WriteString("Commands are listed in the order `gofer --help` shows them. Every command also takes `--help` (`-h`);\n")
	b.WriteString("groups of commands print their subcommands. Commands hidden from `--help` are listed at the end, under\n")
	b.WriteString("[Internal commands](#internal-commands).\n\n")

	b.WriteString("### Global flags\n\n")
	b.WriteString("Global flags may come before or after the command and its arguments.\n\n")
	writeFlags(&b, app.Flags)

	entries := walkCommands(app.Commands, app.Name, false)
	b.WriteString("\n### Index\n\n| Command | Does |\n|---|---|\n")
	for _, e := range entries {
		if !e.internal && e.cmd.Action != nil {
			fmt.Fprintf(&b, "| [`%s`](#%s) | %s |\n", e.path, anchor(e.path), cell(e.cmd.Usage))
		}
	}
	for _, e := range entries {
		if !e.internal {
			writeCommand(&b, e)
		}
	}

	b.WriteString("\n### Internal commands\n\n")
	b.WriteString("Hidden from `--help`: the server and Gofer's own container images run them; they are not meant to be\n")
	b.WriteString("typed by hand, but they are part of the binary and listed here so the reference is complete.\n")
	for _, e := range entries {
		if e.internal {
			writeCommand(&b, e)
		}
	}
	return b.String()
}

func writeCommand(b *strings.Builder, e commandEntry) {
	level := "####"
	if e.depth == 1 && !e.internal {
		level = "###"
	}
	fmt.Fprintf(b, "\n%s %s\n\n`%s` — %s\n", level, e.path, usageLine(e), oneLine(e.cmd.Usage))
	if len(e.cmd.Aliases) > 0 {
		fmt.Fprintf(b, "\nAliases: `%s`.\n", strings.Join(e.cmd.Aliases, "`, `"))
	}
	if len(e.cmd.Subcommands) > 0 {
		var names []string
		for _, s := range e.cmd.Subcommands {
			if !s.Hidden || e.internal {
				names = append(names, fmt.Sprintf("[`%s`](#%s)", s.Name, anchor(e.path+" "+s.Name)))
			}
		}
		if len(names) > 0 {
			fmt.Fprintf(b, "\nSubcommands: %s.\n", strings.Join(names, ", "))
		}
	}
	if len(e.cmd.Flags) > 0 {
		b.WriteString("\n")
		writeFlags(b, e.cmd.Flags)
	}
}

// usageLine is the command's synopsis: its full name, [flags] when it
// has any, then its arguments (or COMMAND for a group).
func usageLine(e commandEntry) string {
	if e.cmd.UsageText != "" {
		return e.cmd.UsageText
	}
	parts := []string{e.path}
	if len(e.cmd.Flags) > 0 {
		parts = append(parts, "[flags]")
	}
	switch {
	case e.cmd.ArgsUsage != "":
		parts = append(parts, e.cmd.ArgsUsage)
	case e.cmd.Action == nil && len(e.cmd.Subcommands) > 0:
		parts = append(parts, "COMMAND")
	}
	return strings.Join(parts, " ")
}

func writeFlags(b *strings.Builder, flags []cli.Flag) {
	b.WriteString("| Flag | Env | Default | Meaning |\n|---|---|---|---|\n")
	for _, f := range flags {
		var env, def string
		if d, ok := f.(cli.DocGenerationFlag); ok {
			if vars := d.GetEnvVars(); len(vars) > 0 {
				env = "`" + strings.Join(vars, "`, `") + "`"
			}
			def = defaultValue(d)
		}
		meaning := usage(f)
		if s, ok := f.(cli.DocGenerationSliceFlag); ok && s.IsSliceFlag() && !strings.Contains(meaning, "repeat") {
			meaning += " (repeatable)"
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", flagNames(f), env, def, cell(meaning))
	}
}

// defaultValue is a flag's default as the user would type it; empty for
// a boolean that is off and for a zero or empty value, which the commands
// read as "not given" (a --limit of 0 leaves the server's default).
func defaultValue(f cli.DocGenerationFlag) string {
	v := f.GetDefaultText()
	if u, err := strconv.Unquote(v); err == nil {
		v = u
	}
	switch v {
	case "", "0", "0s", "false":
		return ""
	}
	return "`" + v + "`"
}

func flagNames(f cli.Flag) string {
	var out []string
	for _, n := range f.Names() {
		if len(n) == 1 {
			out = append(out, "`-"+n+"`")
		} else {
			out = append(out, "`--"+n+"`")
		}
	}
	return strings.Join(out, ", ")
}

func usage(f cli.Flag) string {
	if d, ok := f.(cli.DocGenerationFlag); ok {
		return strings.TrimSpace(d.GetUsage())
	}
	return ""
}

// anchor is the fragment GitHub gives a heading's text.
func anchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9'):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// cell makes text safe inside a Markdown table cell.
func cell(s string) string { return strings.ReplaceAll(oneLine(s), "|", `\|`) }
