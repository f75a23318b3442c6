package sdk

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

var sha = strings.Repeat("0123456789abcdef", 4) // 64 hex digits

func TestValidateImageRef(t *testing.T) {
	for _, ref := range []string{
		"busybox",
		"gofer/busybox:latest",
		"ghcr.io/a/b:1.2",
		"localhost:5000/x/y@sha256:" + sha,
		"registry:5000/a",
		"localhost/a",
		"localhost:5000", // the image "localhost", tag 5000, as Docker reads it
		"a/b/c/d",
		"a.b_c__d-e---f/g",
		"Registry.Example.com/team/app",
		"Foo/bar", // "Foo" can only be a registry, and is a valid one
		"[::1]:5000/a:tag",
		"[fe80::1]/img",
		"10.0.0.1:5000/app:v1_2-3.4",
		"app:_tag",
		"app@sha512:" + strings.Repeat("ab", 64),
		"app:1@sha384:" + strings.Repeat("0", 96),
		strings.Repeat("a", 237),                        // 255 as docker.io/library/a…
		"a/" + strings.Repeat("b", 243),                 // 255 as docker.io/a/b…
		"docker.io/" + strings.Repeat("a", 237),         // 255 as docker.io/library/a…
		"reg.io/" + strings.Repeat("a", 248),            // 255, no prefix implied
		"index.docker.io/a/" + strings.Repeat("b", 243), // 255 as docker.io/a/b…
		"app:" + strings.Repeat("t", 128),
		sha[:63],
		"x/" + sha,
	} {
		if err := ValidateImageRef(ref); err != nil {
			t.Errorf("ValidateImageRef(%q) = %v; want valid", ref, err)
		}
		if !imageRefOracle(ref) {
			t.Errorf("the grammar's regular expression refuses %q, a valid reference", ref)
		}
	}
	for _, tc := range []struct{ ref, want string }{
		{"", "empty"},
		{"Foo", `the repository "Foo" has upper-case letters`},
		{"gofer/Busybox", `the repository "Busybox" has upper-case letters`},
		{"a b", `the character ' '`},
		{" busybox", `the character ' '`},
		{"busybox ", `the character ' '`},
		{"Foo Bar", `upper-case`},
		{":tag", "the name before the tag or digest is empty"},
		{"x:", "the tag after ':' is empty"},
		{"x@sha256:short", "the sha256 digest must be 64 lowercase hex digits"},
		{"x@sha256:" + strings.ToUpper(sha), "lowercase hex"},
		{"x@md5:" + sha, `the digest algorithm "md5"`},
		{"x@" + sha, "is not ALGORITHM:HEX"},
		{"x@sha256:" + sha + "@sha256:" + sha, "lowercase hex"},
		{"-a", `must start and end with a lowercase letter or digit`},
		{"a-", `must start and end`},
		{"a//b", "a path component is empty"},
		{"a/", "a path component is empty"},
		{"/a", "a path component is empty"},
		{"a..b", "separator"},
		{"a___b", "separator"},
		{"a.-b", "separator"},
		{"x:-tag", "the tag \"-tag\" must start with"},
		{"x:t/g", `port "t"`},
		{"x:" + strings.Repeat("t", 129), "at most 128"},
		{"registry:port/a", `port "port"`},
		{"registry:/a", `port ""`},
		{"my_registry:5000/a", `the registry "my_registry:5000"`},
		{"-reg.io/a", `the registry "-reg.io"`},
		{"reg..io/a", "empty name part"},
		{"[::1/a", "opens '['"},
		{"[zz]:5000/a", "not an IPv6 address"},
		{"[::1]x/a", "only :PORT may follow"},
		{"ghcr.io/A/b", `the repository "A" has upper-case`},
		{strings.Repeat("a", 256), "at most 255"},
		{strings.Repeat("a", 238), `the name is 256 characters once Docker adds the implied "docker.io/library/"; at most 255`},
		{"a/" + strings.Repeat("b", 244), `the name is 256 characters once Docker adds the implied "docker.io/"`},
		{"docker.io/" + strings.Repeat("a", 238), `the name is 256 characters once Docker adds the implied "library/"`},
		{"reg.io/" + strings.Repeat("a", 249), "the name is 256 characters; at most 255"},
		{sha, "64 hex digits"},
		{sha + ":latest", "64 hex digits"},
		{"a\x00b", `the character '\x00'`},
		{"ünïcode", "the character"},
	} {
		err := ValidateImageRef(tc.ref)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ValidateImageRef(%q) = %v; want an error containing %q", tc.ref, err, tc.want)
		}
		if imageRefOracle(tc.ref) {
			t.Errorf("the grammar's regular expression accepts %q, an invalid reference", tc.ref)
		}
	}
}

// A config with an invalid image is refused, naming the task and field.
func TestValidateRefusesInvalidImage(t *testing.T) {
	cfg := &PipelineConfig{ID: "imgs", Name: "imgs", Tasks: []*TaskConfig{{ID: "build", Image: "Foo Bar"}}}
	err := cfg.Validate()
	if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), `tasks[build].image: "Foo Bar" is not a valid image reference: `) {
		t.Fatalf("Validate() = %v; want an invalid config error naming tasks[build].image", err)
	}
}

// imageRefOracle is the reference grammar as regular expressions (those
// of Docker's reference package), an independent check of the parser.
var imageRefOracleRE = func() *regexp.Regexp {
	const (
		alnum     = `[a-z0-9]+`
		separator = `(?:[._]|__|[-]+)`
		component = alnum + `(?:` + separator + alnum + `)*`
		label     = `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])`
		host      = `(?:` + label + `(?:\.` + label + `)*|\[[a-fA-F0-9:]+\])`
		domain    = host + `(?::[0-9]+)?`
		name      = `(?:` + domain + `/)?` + component + `(?:/` + component + `)*`
		tag       = `[\w][\w.-]{0,127}`
		digest    = `(?:sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128})`
	)
	return regexp.MustCompile(`^(` + name + `)(?::` + tag + `)?(?:@` + digest + `)?$`)
}()

// imageRefNormalizedRE splits a name as Docker's splitDockerDomain does:
// a first component with '.', ':' or an upper-case letter, or localhost,
// is a registry.
var (
	imageRefRegistryRE = regexp.MustCompile(`^(?:[^/]*[.:A-Z][^/]*|localhost)/(.*)$`)
	imageRefHexRE      = regexp.MustCompile(`^[a-f0-9]{64}$`)
)

func imageRefOracle(ref string) bool {
	m := imageRefOracleRE.FindStringSubmatch(ref)
	if m == nil || imageRefHexRE.MatchString(m[1]) {
		return false
	}
	name := m[1]
	if r := imageRefRegistryRE.FindStringSubmatch(name); r == nil {
		name = "docker.io/" + name
	} else if d := strings.TrimSuffix(name, "/"+r[1]); d == "docker.io" || d == "index.docker.io" {
		name = "docker.io/" + r[1]
	}
	if rest := strings.TrimPrefix(name, "docker.io/"); rest != name && !strings.Contains(rest, "/") {
		name = "docker.io/library/" + rest
	}
	return len(name) <= maxImageNameLength
}

func FuzzValidateImageRef(f *testing.F) {
	for _, seed := range []string{"busybox", "gofer/busybox:latest", "localhost:5000/x/y@sha256:" + sha, "[::1]:5/a",
		"Foo", "a b", ":tag", "x:", "a//b", "a__b-c.d", "Reg.io/a"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		err := ValidateImageRef(ref)
		if want := imageRefOracle(ref); (err == nil) != want {
			t.Fatalf("ValidateImageRef(%q) = %v, but the grammar says valid=%v", ref, err, want)
		}
	})
}
