package sdk

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Image references follow Docker's grammar (the distribution project's
// reference package), checked here so a config with a reference Docker
// would refuse fails when it is registered, not when its task runs:
//
//	reference  := name [ ":" tag ] [ "@" digest ]
//	name       := [ domain "/" ] path          (at most 255 characters with docker.io/[library/] when implied;
//	                                             not 64 lowercase hex digits, which Docker reads as an image id)
//	domain     := host [ ":" port ]            host: DNS labels of letters, digits and "-" joined by ".", or "[" IPv6 "]"
//	path       := component { "/" component }  component: [a-z0-9]+ joined by ".", "_", "__" or "-"+
//	tag        := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
//	digest     := algorithm ":" hex            sha256 (64), sha384 (96) or sha512 (128) lowercase hex digits
//
// The parser is written by hand, without regular expressions, so it runs
// in linear time on any input; fuzz_test.go holds it to a regular
// expression of the same grammar.

// maxImageNameLength is Docker's limit on a reference's name (domain and
// path, without tag or digest).
const maxImageNameLength = 255

// digestHexLengths are the digest algorithms Docker accepts and the
// length of each one's hex.
var digestHexLengths = map[string]int{"sha256": 64, "sha384": 96, "sha512": 128}

// ValidateImageRef reports whether ref is a valid Docker image reference
// such as "busybox", "gofer/busybox:latest", "ghcr.io/a/b:1.2" or
// "localhost:5000/x/y@sha256:…". The error says what is wrong.
func ValidateImageRef(ref string) error {
	if ref == "" {
		return errors.New("it is empty")
	}
	name, digest, hasDigest := strings.Cut(ref, "@")
	if hasDigest {
		if err := validateDigest(digest); err != nil {
			return err
		}
	}
	// The tag follows the last ':' that no '/' comes after (a ':' before
	// a '/' is a registry's port).
	if i := strings.LastIndexByte(name, ':'); i >= 0 && !strings.Contains(name[i+1:], "/") {
		if err := validateTag(name[i+1:]); err != nil {
			return err
		}
		name = name[:i]
	}
	if name == "" {
		return errors.New("the name before the tag or digest is empty")
	}
	if len(name) == 64 && strings.Trim(name, "0123456789abcdef") == "" {
		return errors.New("the name is 64 hex digits, which Docker refuses as a repository name (it reads as an image ID)")
	}
	if n, implied := normalizedNameLength(name); n > maxImageNameLength {
		if implied != "" {
			return fmt.Errorf("the name is %d characters once Docker adds the implied %q; at most %d", n, implied, maxImageNameLength)
		}
		return fmt.Errorf("the name is %d characters; at most %d", n, maxImageNameLength)
	}
	return validateImageName(name)
}

// normalizedNameLength is the length of name as Docker stores it, which
// its 255-character limit applies to: a name whose first component is not
// a registry (no '.', ':' or upper-case letter, not localhost) is on
// docker.io, and a docker.io name of one component is under library/
// ("busybox" is "docker.io/library/busybox"); "index.docker.io" reads as
// docker.io. implied is what Docker puts in front, "" when nothing.
func normalizedNameLength(name string) (n int, implied string) {
	first, rest, hasSlash := strings.Cut(name, "/")
	isRegistry := strings.ContainsAny(first, ".:") || first == "localhost" || strings.ToLower(first) != first
	switch {
	case !hasSlash:
		implied = "docker.io/library/"
		return len(implied) + len(name), implied
	case !isRegistry:
		implied = "docker.io/"
		return len(implied) + len(name), implied
	}
	if first == "index.docker.io" {
		first = "docker.io"
	}
	if first == "docker.io" && !strings.Contains(rest, "/") {
		implied = "library/"
		return len(first) + 1 + len(implied) + len(rest), implied
	}
	return len(first) + 1 + len(rest), ""
}

// validateImageName checks domain and path. A first component that can
// only be a registry (it has a '.', a ':', an upper-case letter or a '[',
// or is localhost) is checked as one; any other is fine as either.
func validateImageName(name string) error {
	pathErr := validateImagePath(name)
	if pathErr == nil {
		return nil
	}
	first, rest, hasSlash := strings.Cut(name, "/")
	if !hasSlash {
		return pathErr
	}
	domainErr := validateDomain(first)
	if domainErr == nil {
		if err := validateImagePath(rest); err != nil {
			return err
		}
		return nil
	}
	if strings.ContainsAny(first, ".:[]ABCDEFGHIJKLMNOPQRSTUVWXYZ") || first == "localhost" {
		return domainErr
	}
	return pathErr
}

// validateImagePath checks the repository path: lowercase components.
func validateImagePath(path string) error {
	for _, c := range strings.Split(path, "/") {
		if err := validatePathComponent(c); err != nil {
			return err
		}
	}
	return nil
}

func validatePathComponent(c string) error {
	if c == "" {
		return errors.New("a path component is empty (a '/' at an end or two in a row)")
	}
	for i := 0; i < len(c); i++ {
		ch := c[i]
		switch {
		case isLowerAlnum(ch):
		case ch >= 'A' && ch <= 'Z':
			return fmt.Errorf("the repository %q has upper-case letters; it must be lowercase", c)
		case ch == '.' || ch == '_' || ch == '-':
			if i == 0 || i == len(c)-1 {
				return fmt.Errorf("the repository %q must start and end with a lowercase letter or digit", c)
			}
			// A separator is one '.', one or two '_', or any number of
			// '-', between letters or digits.
			j := i + 1
			switch ch {
			case '_':
				if c[j] == '_' {
					j++
				}
			case '-':
				for j < len(c) && c[j] == '-' {
					j++
				}
			}
			if j >= len(c) || !isLowerAlnum(c[j]) {
				return fmt.Errorf("the repository %q has %q where a separator ('.', '_', '__' or '-') must be followed by a letter or digit", c, c[i:min(j+1, len(c))])
			}
			i = j - 1
		default:
			return fmt.Errorf("the repository %q has the character %q; only lowercase letters, digits, '.', '_', '-' and '/' are allowed", c, runeAt(c, i))
		}
	}
	return nil
}

// validateDomain checks a registry: host[:port].
func validateDomain(d string) error {
	var host, port string
	hasPort := false
	if strings.HasPrefix(d, "[") {
		end := strings.IndexByte(d, ']')
		if end < 0 {
			return fmt.Errorf("the registry %q opens '[' without closing it", d)
		}
		ip := d[1:end]
		if ip == "" || strings.Trim(ip, "0123456789abcdefABCDEF:") != "" {
			return fmt.Errorf("the registry %q is not an IPv6 address in brackets", d)
		}
		port = d[end+1:]
		if port != "" {
			if port[0] != ':' {
				return fmt.Errorf("the registry %q has %q after its address; only :PORT may follow", d, port)
			}
			port, hasPort = port[1:], true
		}
	} else {
		host, port, hasPort = strings.Cut(d, ":")
		for _, label := range strings.Split(host, ".") {
			if err := validateDomainLabel(d, label); err != nil {
				return err
			}
		}
	}
	if hasPort {
		if port == "" || strings.Trim(port, "0123456789") != "" {
			return fmt.Errorf("the registry %q has port %q; a port is digits", d, port)
		}
	}
	return nil
}

func validateDomainLabel(d, label string) error {
	if label == "" {
		return fmt.Errorf("the registry %q has an empty name part", d)
	}
	for i := 0; i < len(label); i++ {
		ch := label[i]
		switch {
		case isLowerAlnum(ch) || (ch >= 'A' && ch <= 'Z'):
		case ch == '-' && i > 0 && i < len(label)-1:
		default:
			return fmt.Errorf("the registry %q has %q where letters, digits and inner '-' are allowed", d, runeAt(label, i))
		}
	}
	return nil
}

func validateTag(tag string) error {
	if tag == "" {
		return errors.New("the tag after ':' is empty")
	}
	if len(tag) > 128 {
		return fmt.Errorf("the tag is %d characters; at most 128", len(tag))
	}
	for i := 0; i < len(tag); i++ {
		ch := tag[i]
		if isWordChar(ch) || (i > 0 && (ch == '.' || ch == '-')) {
			continue
		}
		if i == 0 {
			return fmt.Errorf("the tag %q must start with a letter, digit or '_'", tag)
		}
		return fmt.Errorf("the tag %q has the character %q; only letters, digits, '_', '.' and '-' are allowed", tag, runeAt(tag, i))
	}
	return nil
}

func validateDigest(d string) error {
	alg, hex, ok := strings.Cut(d, ":")
	if !ok {
		return fmt.Errorf("the digest %q is not ALGORITHM:HEX (like sha256:…)", d)
	}
	want, known := digestHexLengths[alg]
	if !known {
		return fmt.Errorf("the digest algorithm %q is not sha256, sha384 or sha512", alg)
	}
	if len(hex) != want || strings.Trim(hex, "0123456789abcdef") != "" {
		return fmt.Errorf("the %s digest must be %d lowercase hex digits, got %d characters", alg, want, len(hex))
	}
	return nil
}

func isLowerAlnum(ch byte) bool { return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') }

func isWordChar(ch byte) bool {
	return isLowerAlnum(ch) || (ch >= 'A' && ch <= 'Z') || ch == '_'
}

// runeAt is the character at byte i of s, for messages (utf8.RuneError
// for a byte that starts none).
func runeAt(s string, i int) rune {
	r, _ := utf8.DecodeRuneInString(s[i:])
	return r
}
