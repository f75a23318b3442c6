package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// Every kind of usage mistake exits 2 with one error line (and the usage
// line where there is one), never the whole help page; `gofer version`
// prints the build. None of these reach a server.
func TestUsageErrorsExit2AndVersion(t *testing.T) {
	build := Build{Version: "1.2.3", Commit: "abc123"}
	for _, tc := range []struct {
		args         []string
		code         int
		stdout, errs string
	}{
		{[]string{"version"}, 0, "gofer 1.2.3 (commit abc123", ""},
		{[]string{"-o", "json", "version"}, 0, `"version":"1.2.3"`, ""},
		{[]string{"version", "extra"}, 2, "", "version takes no arguments"},
		{[]string{"nosuch"}, 2, "", "unknown command \"nosuch\"; `gofer --help` lists the commands"},
		{[]string{"namespace", "nosuch"}, 2, "", "unknown command \"nosuch\"; `gofer namespace --help`"},
		{[]string{"namespace", "create", "--bogus", "x"}, 2, "", "flag provided but not defined: -bogus\nusage: gofer namespace create ID"},
		{[]string{"namespace", "get"}, 2, "", "get takes 1 argument(s), got 0\nusage: gofer namespace get ID"},
	} {
		var out, errs bytes.Buffer
		code := run(context.Background(), build, append([]string{"gofer"}, tc.args...), &out, &errs)
		if code != tc.code || !strings.Contains(out.String(), tc.stdout) || !strings.Contains(errs.String(), tc.errs) {
			t.Errorf("gofer %s: exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q",
				strings.Join(tc.args, " "), code, out.String(), errs.String(), tc.code, tc.stdout, tc.errs)
		}
		if strings.Contains(errs.String()+out.String(), "COMMANDS:") {
			t.Errorf("gofer %s printed the help page", strings.Join(tc.args, " "))
		}
	}
}
