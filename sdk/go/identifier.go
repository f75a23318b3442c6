package sdk

import (
	"errors"
	"fmt"
)

// Identifier limits. One rule serves every id in Gofer: namespaces,
// pipelines, tasks, extensions, subscriptions, roles, object and secret keys.
// Upstream's examples use underscores (simple_task) and its tests use hyphens
// (devops-test), so both are accepted.
const (
	MinIdentifierLength = 3
	MaxIdentifierLength = 32
)

// ErrInvalidIdentifier is wrapped by every identifier validation failure.
var ErrInvalidIdentifier = errors.New("invalid identifier")

// ValidateIdentifier reports whether id is 3 to 32 characters of ASCII
// letters, digits, '_' and '-'. The error says which rule id broke.
func ValidateIdentifier(id string) error {
	if len(id) < MinIdentifierLength || len(id) > MaxIdentifierLength {
		return fmt.Errorf("%w: %q must be %d to %d characters long, got %d",
			ErrInvalidIdentifier, truncateForError(id), MinIdentifierLength, MaxIdentifierLength, len(id))
	}
	for i := 0; i < len(id); i++ {
		if !isIdentifierByte(id[i]) {
			return fmt.Errorf("%w: %q may contain only letters, digits, '_' and '-' (found %q at position %d)",
				ErrInvalidIdentifier, truncateForError(id), rune(id[i]), i)
		}
	}
	return nil
}

func isIdentifierByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_' || b == '-'
}

// truncateForError keeps error messages short when a caller sends a huge id.
func truncateForError(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
