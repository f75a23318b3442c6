package schedulertest

import (
	"fmt"
	"strings"
)

// Line is one line a program writes, on stdout or stderr.
type Line struct {
	Stderr bool
	Text   string
}

// Program is what a conformance container does, in terms every backend
// can run: write lines, then exit with a code, or keep running until it
// is stopped. A backend turns it into a StartRequest (Factory.Request);
// Shell renders it as a POSIX shell script for backends that run an image
// with a shell.
type Program struct {
	// Output is written in order, before anything else happens. When
	// UntilStopped or IgnoreTERM is set, the signal handling is in place
	// before the first line, so a test that has seen the first line may
	// stop the container.
	Output []Line
	// Exit is the exit code: at once after the output, or (UntilStopped)
	// when SIGTERM arrives.
	Exit int
	// UntilStopped keeps the program running after its output until it is
	// sent SIGTERM, on which it exits with Exit.
	UntilStopped bool
	// IgnoreTERM keeps the program running after its output and ignores
	// SIGTERM: only a kill ends it.
	IgnoreTERM bool
}

// Shell is the program as a POSIX shell script (busybox sh runs it).
// Texts are quoted, so any printable text is written verbatim.
func (p Program) Shell() string {
	var b strings.Builder
	switch {
	case p.IgnoreTERM:
		b.WriteString(`trap "" TERM; `)
	case p.UntilStopped:
		fmt.Fprintf(&b, `trap 'exit %d' TERM; `, p.Exit)
	}
	for _, l := range p.Output {
		b.WriteString("echo " + quote(l.Text))
		if l.Stderr {
			b.WriteString(" >&2")
		}
		b.WriteString("; ")
	}
	if p.UntilStopped || p.IgnoreTERM {
		// A trapped signal interrupts wait (not a foreground sleep), so
		// the trap runs at once; an ignored one does not, so loop.
		b.WriteString(`while :; do sleep 3600 & wait $!; done`)
		return b.String()
	}
	fmt.Fprintf(&b, "exit %d", p.Exit)
	return b.String()
}

func quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Text is the program's output as a backend's log of it holds it when
// both streams are read into one: each line followed by a newline.
func (p Program) Text(stderr bool) string {
	var b strings.Builder
	for _, l := range p.Output {
		if l.Stderr == stderr {
			b.WriteString(l.Text + "\n")
		}
	}
	return b.String()
}
