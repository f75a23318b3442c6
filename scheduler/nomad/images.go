package nomad

import (
	"context"
	"fmt"

	"github.com/goferhq/gofer/scheduler"
)

// ImageLabel implements scheduler.Images: Nomad has no API to read the
// images of its client nodes, so the answer is ErrUnsupported.
func (s *Scheduler) ImageLabel(ctx context.Context, image, key string) (string, bool, error) {
	return "", false, fmt.Errorf("nomad: image label of %s: %w", image, scheduler.ErrUnsupported)
}

// ImportBinary implements scheduler.Images: Nomad cannot place an image on
// its client nodes; the built-in extensions' images must be made on each
// node (or pushed to a registry) by other means.
func (s *Scheduler) ImportBinary(ctx context.Context, image, path string, entrypoint []string, labels map[string]string) error {
	return fmt.Errorf("nomad: import %s: %w", image, scheduler.ErrUnsupported)
}
