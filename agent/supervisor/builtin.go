package supervisor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/goferhq/gofer/scheduler"
	"github.com/goferhq/gofer/store/model"
)

// The built-in extensions are subcommands of the gofer binary
// (`gofer service extension <kind>`); their images hold nothing but this
// binary and are made by the server itself, so no registry is needed.
var builtinKinds = []string{"interval", "cron", "github"}

// StdKinds are the extensions extensions.install_std_extensions installs.
var StdKinds = []string{"interval", "cron"}

// LabelBinarySHA256 labels a built-in image with the hash of the binary
// in it: an image of another build with the same version is re-imported.
const LabelBinarySHA256 = "gofer.binary_sha256"

// BuiltinImage is the image of a built-in extension for a gofer version.
func BuiltinImage(kind, version string) string {
	return builtinRepo(kind) + ":" + imageTag(version)
}

var badTagChars = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// imageTag makes a version a valid image tag ("0.1.0+dirty" → "0.1.0-dirty").
func imageTag(version string) string {
	t := badTagChars.ReplaceAllString(strings.TrimPrefix(version, "v"), "-")
	t = strings.TrimLeft(t, ".-")
	if t == "" {
		t = "dev"
	}
	return t[:min(len(t), 128)]
}

// StdExtensions are the registrations of the standard extensions.
func StdExtensions(version string) []model.Extension {
	var out []model.Extension
	for _, k := range StdKinds {
		out = append(out, model.Extension{ID: k, Image: BuiltinImage(k, version), Settings: map[string]string{}, AdditionalRoles: []string{}})
	}
	return out
}

// Builtin makes the built-in images from the running binary.
type Builtin struct {
	// Version is the binary's version (the images' tag).
	Version string
	// Path is the binary (os.Executable).
	Path string

	hashOnce sync.Once
	hash     string
	hashErr  error
	// mu serialises imports (two extensions of the same kind would
	// otherwise import the same binary twice at once).
	mu sync.Mutex
}

// kind reports which built-in extension image names, if any. Any tag of
// gofer/extension-<kind> counts: the tag records the version that
// installed it, and after an upgrade the registration keeps that tag, yet
// the image must hold the binary that runs now (ensure re-imports it).
func (b *Builtin) kind(image string) (string, bool) {
	if b == nil {
		return "", false
	}
	repo, tag, ok := strings.Cut(image, ":")
	if !ok || tag == "" {
		return "", false
	}
	for _, k := range builtinKinds {
		if repo == builtinRepo(k) {
			return k, true
		}
	}
	return "", false
}

// builtinRepo is a built-in extension's image repository.
func builtinRepo(kind string) string { return "gofer/extension-" + kind }

// binaryHash is the sha256 of the binary, computed once.
func (b *Builtin) binaryHash() (string, error) {
	b.hashOnce.Do(func() {
		f, err := os.Open(b.Path)
		if err != nil {
			b.hashErr = err
			return
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			b.hashErr = err
			return
		}
		b.hash = hex.EncodeToString(h.Sum(nil))
	})
	return b.hash, b.hashErr
}

// ensure imports the built-in image when it is missing or holds another
// binary (its label differs). Other images are left alone. An engine that
// cannot read or import images (Nomad: ErrUnsupported) gets the image as
// named: it must have been made on its hosts beforehand (`gofer service
// extension-image`); asNamed reports that case.
func (b *Builtin) ensure(ctx context.Context, eng scheduler.Images, image string) (asNamed bool, err error) {
	kind, ok := b.kind(image)
	if !ok {
		return false, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	label, present, err := eng.ImageLabel(ctx, image, LabelBinarySHA256)
	if errors.Is(err, scheduler.ErrUnsupported) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return false, b.importInto(ctx, eng, image, kind, label, present)
}

// importInto imports the binary as image unless the image is present
// with the binary's hash as label. b.mu is held.
func (b *Builtin) importInto(ctx context.Context, eng scheduler.Images, image, kind, label string, present bool) error {
	hash, err := b.binaryHash()
	if err != nil {
		return fmt.Errorf("built-in image %s: read the gofer binary %s: %w", image, b.Path, err)
	}
	if present && label == hash {
		return nil
	}
	if err := eng.ImportBinary(ctx, image, b.Path, []string{"/gofer", "service", "extension", kind},
		map[string]string{LabelBinarySHA256: hash}); err != nil {
		return fmt.Errorf("built-in image %s: %w", image, err)
	}
	return nil
}

// Import makes the built-in image of kind, tagged tag, in eng (the
// command `gofer service extension-image`, run on each host of an engine
// that cannot import itself); it reports whether an import was needed.
func (b *Builtin) Import(ctx context.Context, eng scheduler.Images, kind, tag string) (image string, imported bool, err error) {
	if !slices.Contains(builtinKinds, kind) {
		return "", false, fmt.Errorf("%q is not a built-in extension (%s)", kind, strings.Join(builtinKinds, ", "))
	}
	image = builtinRepo(kind) + ":" + imageTag(tag)
	b.mu.Lock()
	defer b.mu.Unlock()
	label, present, err := eng.ImageLabel(ctx, image, LabelBinarySHA256)
	if err != nil {
		return image, false, err
	}
	hash, err := b.binaryHash()
	if err != nil {
		return image, false, err
	}
	if present && label == hash {
		return image, false, nil
	}
	return image, true, b.importInto(ctx, eng, image, kind, label, present)
}

// ExecutablePath is the running gofer binary, the content of the built-in
// images. On Linux it is /proc/self/exe, which stays the running program
// even when a package upgrade replaces the file on disk (the image must
// hold what runs).
func ExecutablePath() (string, error) {
	const self = "/proc/self/exe"
	if _, err := os.Stat(self); err == nil {
		return self, nil
	}
	return os.Executable()
}

// BuiltinKinds lists the built-in extensions.
func BuiltinKinds() []string { return slices.Clone(builtinKinds) }
