package docker

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/docker/docker/api/types/image"

	"github.com/goferhq/gofer/scheduler"
)

var _ scheduler.Images = (*Scheduler)(nil)

// ImageLabel implements scheduler.Images.
func (s *Scheduler) ImageLabel(ctx context.Context, ref, key string) (string, bool, error) {
	ictx, cancel := s.short(ctx)
	defer cancel()
	info, err := s.cli.ImageInspect(ictx, ref)
	if notFound(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, classify("inspect image", ref, err)
	}
	if info.Config == nil {
		return "", true, nil
	}
	return info.Config.Labels[key], true, nil
}

// ImportBinary implements scheduler.Images: it streams a tar holding only
// the file at path, as entrypoint[0] (mode 0755, owned by root), into the engine's image
// import, with ENTRYPOINT and LABEL changes. The tar is written as it is
// read, so a large binary is never held in memory.
func (s *Scheduler) ImportBinary(ctx context.Context, ref, path string, entrypoint []string, labels map[string]string) error {
	if len(entrypoint) == 0 || strings.Trim(entrypoint[0], "/") == "" {
		return fmt.Errorf("docker: import %s: the entrypoint names the executable: %w", ref, scheduler.ErrInvalid)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("docker: import %s: %w", ref, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("docker: import %s: %w", ref, err)
	}
	ep, err := json.Marshal(entrypoint)
	if err != nil {
		return err
	}
	changes := []string{"ENTRYPOINT " + string(ep)}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "" || strings.ContainsAny(k+labels[k], " \"\n\t=") {
			return fmt.Errorf("docker: import %s: label %q=%q needs quoting this import does not do: %w", ref, k, labels[k], scheduler.ErrInvalid)
		}
		changes = append(changes, "LABEL "+k+"="+labels[k])
	}
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(entrypoint[0], "/"), Mode: 0o755, Size: fi.Size(), ModTime: fi.ModTime(), Typeflag: tar.TypeReg})
		if err == nil {
			_, err = io.Copy(tw, f)
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	ictx, cancel := context.WithTimeout(ctx, s.opts.PullTimeout)
	defer cancel()
	rc, err := s.cli.ImageImport(ictx, image.ImportSource{Source: pr, SourceName: "-"}, ref, image.ImportOptions{Changes: changes})
	if err != nil {
		pr.CloseWithError(err)
		return classify("import", ref, err)
	}
	defer rc.Close()
	if err := readPullStream(rc); err != nil {
		return fmt.Errorf("docker: import %s: %w: %w", ref, scheduler.ErrUnavailable, err)
	}
	s.log.Info("imported image", "image", ref, "from", path)
	return nil
}
