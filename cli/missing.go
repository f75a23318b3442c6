package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/goferhq/gofer/client"
)

// missingValuesError shows an API refusal that lists missing secrets and
// objects (client.Error.Missing) one per line, each with the command that
// stores it, instead of the API's one-line message.
type missingValuesError struct{ err *client.Error }

// explainMissing returns err, shown one missing value per line when the
// API listed them.
func explainMissing(err error) error {
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || len(apiErr.Missing) == 0 {
		return err
	}
	return &missingValuesError{err: apiErr}
}

func (e *missingValuesError) Error() string {
	var b strings.Builder
	n := len(e.err.Missing)
	noun := "secrets or objects are"
	if n == 1 {
		noun = "secret or object is"
	}
	fmt.Fprintf(&b, "%d %s not there; fix each, then try again:", n, noun)
	for _, m := range e.err.Missing {
		fmt.Fprintf(&b, "\n  %s %q %s (used by %s): %s", m.Kind, m.Key, m.Problem, strings.Join(m.UsedBy, ", "), m.Fix)
	}
	return b.String()
}

func (e *missingValuesError) Unwrap() error { return e.err }
