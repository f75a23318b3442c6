package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/goferhq/gofer/client"
	"github.com/goferhq/gofer/store/model"
)

func serverCommand() *cli.Command {
	return &cli.Command{
		Name:  "server",
		Usage: "operate the cluster: membership and backups",
		Subcommands: []*cli.Command{
			{Name: "members", Usage: "list the cluster's members and their health", Action: serverMembers},
			{Name: "join", Usage: "make the node at --api-base-url join the cluster reachable at URL (a no-op if it already belongs)",
				ArgsUsage: "URL", Action: serverJoin},
			{Name: "remove", Usage: "remove a node from the cluster", ArgsUsage: "NODE_ID", Action: serverRemove},
			{
				Name:  "snapshot",
				Usage: "back up and restore the whole cluster state",
				Subcommands: []*cli.Command{
					{Name: "save", Usage: "write a backup of the whole cluster state to FILE ('-' for stdout)", ArgsUsage: "FILE", Action: snapshotSave},
					{Name: "restore", Usage: "replace the whole cluster state with the backup in FILE (verified first: a damaged file changes nothing)", ArgsUsage: "FILE", Action: snapshotRestore,
						Flags: []cli.Flag{&cli.BoolFlag{Name: "force-legacy", Usage: "accept a backup from an older gofer (format version 1), which has no checksum to verify"}, yesFlag()}},
				},
			},
		},
	}
}

var memberHeader = []string{"node id", "raft address", "api address", "voter", "leader", "state", "applied index", "last contact", "log store"}

func memberRows(list []*model.Member) [][]string {
	rows := make([][]string, len(list))
	for i, m := range list {
		state, applied, contact := m.State, strconv.FormatUint(m.AppliedIndex, 10), "-"
		if !m.Reachable {
			state, applied = "unreachable", "-"
		} else if m.LastContact >= 0 {
			contact = fmt.Sprintf("%dms", m.LastContact)
		}
		leader := ""
		if m.Leader {
			leader = "*"
		}
		rows[i] = []string{m.ID, m.RaftAddr, orDash(m.APIAddr), strconv.FormatBool(m.Voter), leader, state, applied, contact, orDash(m.LogStore)}
	}
	return rows
}

func serverMembers(c *cli.Context) error {
	p, cl, err := setup(c, 0)
	if err != nil {
		return err
	}
	list, err := cl.Members(c.Context)
	if err != nil {
		return err
	}
	return p.result("members", list, memberHeader, memberRows(list))
}

func serverJoin(c *cli.Context) error {
	p, cl, err := setup(c, 1)
	if err != nil {
		return err
	}
	if err := cl.Join(c.Context, c.Args().First()); err != nil {
		return err
	}
	p.message("✓ Node %s is a member of the cluster at %s", cl.Nodes()[0], c.Args().First())
	return nil
}

func serverRemove(c *cli.Context) error {
	p, cl, err := setup(c, 1)
	if err != nil {
		return err
	}
	if err := cl.RemoveMember(c.Context, c.Args().First()); err != nil {
		return err
	}
	p.message("✓ Removed node %s from the cluster", c.Args().First())
	return nil
}

func snapshotSave(c *cli.Context) error {
	p, cl, err := setup(c, 1)
	if err != nil {
		return err
	}
	path := c.Args().First()
	if path == "-" {
		_, err := cl.SnapshotSave(c.Context, c.App.Writer)
		return err
	}
	// Write to a temporary file and rename, so an interrupted download
	// never leaves a truncated backup under the final name.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".gofer-snapshot-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	n, err := cl.SnapshotSave(c.Context, tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	p.message("✓ Saved a snapshot of the cluster state to %s (%d bytes)", path, n)
	return nil
}

func snapshotRestore(c *cli.Context) error {
	p, cl, err := setup(c, 1)
	if err != nil {
		return err
	}
	// The file is opened before the question, so a mistyped name fails
	// at once instead of after a "yes".
	var r io.Reader
	if path := c.Args().First(); path == "-" {
		r = os.Stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if st, err := f.Stat(); err != nil {
			return err
		} else if st.IsDir() {
			return fmt.Errorf("%s is a directory, not a backup file", path)
		}
		r = f
	}
	// Restoring from standard input leaves no terminal to ask on: it
	// needs --yes.
	if err := confirm(c, func() string {
		return fmt.Sprintf("Replace the whole cluster state with the backup in %s? Everything written since it was taken is lost.", c.Args().First())
	}); err != nil {
		return err
	}
	res, err := cl.SnapshotRestore(c.Context, r, client.RestoreOptions{ForceLegacy: c.Bool("force-legacy")})
	if err != nil {
		return err
	}
	if p.format == "plain" {
		p.message("✓ Restored the cluster state from %s (taken at index %d, %d bytes)", c.Args().First(), res.Index, res.Size)
		return nil
	}
	return p.result("restore", res, nil, nil)
}
