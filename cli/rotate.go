package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/goferhq/gofer/client"
	"github.com/goferhq/gofer/store/model"
)

func rotateKeyCommand() *cli.Command {
	return &cli.Command{
		Name:  "rotate-encryption-key",
		Usage: "re-seal every secret under the nodes' configured secret_store.encryption_key",
		Description: `Before you run it, give every node the new key as secret_store.encryption_key and
the old one in secret_store.previous_encryption_keys, and restart the nodes one by
one. The leader then re-seals every secret, replaced value and run token under the
new key while the cluster serves; this command follows the progress until it is
done (--detach returns at once). Once it is done, remove the old key from every
node's config. See docs/secrets-and-objects.md, "Rotating the encryption key".`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "status", Usage: "only show the rotation's state and progress"},
			&cli.BoolFlag{Name: "abort", Usage: "roll the running rotation back: re-seal everything under the old key again"},
			&cli.BoolFlag{Name: "detach", Usage: "start (or abort) and return without following the progress"},
			&cli.DurationFlag{Name: "poll-interval", Usage: "how often to ask for progress", Value: time.Second},
		},
		Action: rotateKey,
	}
}

func rotateKey(c *cli.Context) error {
	p, cl, err := setup(c, 0)
	if err != nil {
		return err
	}
	if c.Bool("status") && c.Bool("abort") {
		return usageError(c, "--status and --abort do not go together")
	}
	var st *model.KeyRotationStatus
	if c.Bool("status") {
		st, err = cl.EncryptionKeyRotation(c.Context)
	} else {
		st, err = cl.RotateEncryptionKey(c.Context, c.Bool("abort"))
	}
	if err != nil {
		return err
	}
	if c.Bool("status") || c.Bool("detach") {
		return printRotation(p, st)
	}
	return followRotation(c, p, cl, st)
}

// followRotation prints a progress line per change until the rotation is
// done.
func followRotation(c *cli.Context, p *printer, cl *client.Client, st *model.KeyRotationStatus) error {
	last := ""
	for {
		line := rotationLine(st)
		if line != last {
			p.message("%s", line)
			last = line
		}
		if st.Rotation == nil || st.Rotation.State == model.KeyRotationDone {
			return printRotation(p, st)
		}
		select {
		case <-c.Context.Done():
			return c.Context.Err()
		case <-time.After(c.Duration("poll-interval")):
		}
		next, err := cl.EncryptionKeyRotation(c.Context)
		if err != nil {
			return err
		}
		st = next
	}
}

func rotationLine(st *model.KeyRotationStatus) string {
	if st.Rotation == nil {
		return "no rotation has run"
	}
	r := st.Rotation
	done := st.Total.Sum() - st.Remaining.Sum()
	return fmt.Sprintf("%s %s → %s: %d of %d values under the target key", r.State, orDash(r.Source), r.Target, done, st.Total.Sum())
}

func printRotation(p *printer, st *model.KeyRotationStatus) error {
	rows := kv("cluster key check", orDash(st.KeyCheck), "this node's keys", strings.Join(st.NodeKeyChecks, ", "))
	if r := st.Rotation; r != nil {
		rows = append(rows, kv("state", r.State, "from", orDash(r.Source), "to", r.Target,
			"aborted", fmt.Sprint(r.Aborted), "started", humanTime(r.Started), "re-sealed", fmt.Sprint(r.Resealed))...)
		if r.Finished != 0 {
			rows = append(rows, kv("finished", humanTime(r.Finished))...)
		}
	}
	rows = append(rows, kv(
		"remaining secrets", fmt.Sprint(st.Remaining.Secrets),
		"remaining previous values", fmt.Sprint(st.Remaining.PreviousSecrets),
		"remaining run tokens", fmt.Sprint(st.Remaining.RunTokens))...)
	return p.result("", st, nil, rows)
}
