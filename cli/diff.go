package cli

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	sdk "github.com/goferhq/gofer/sdk/go"
	"github.com/goferhq/gofer/store/model"
)

// configDiff shows what changed between two versions of a pipeline, as a
// unified diff of their configs.
func configDiff(c *cli.Context) error {
	if err := args(c, 3); err != nil {
		return err
	}
	p, err := out(c)
	if err != nil {
		return err
	}
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	id := c.Args().First()
	var texts [2][]string
	var versions [2]int64
	for i := range versions {
		if versions[i], err = parseNumber(c, "VERSION", c.Args().Get(i+1)); err != nil {
			return err
		}
		cfg, err := cl.GetConfig(c.Context, id, versions[i])
		if err != nil {
			return err
		}
		versions[i] = cfg.Version
		text, err := userConfigJSON(cfg)
		if err != nil {
			return err
		}
		texts[i] = strings.Split(text, "\n")
	}
	lines := diffLines(texts[0], texts[1])
	if p.format == "json" {
		return p.result("diff", lines, nil, nil)
	}
	if p.format == "silent" {
		return nil
	}
	hunks := contextHunks(lines, 3)
	fmt.Fprintf(p.w, "--- %s version %d\n+++ %s version %d\n", id, versions[0], id, versions[1])
	for i, h := range hunks {
		if i > 0 || h[0] != 0 {
			fmt.Fprintln(p.w, "@@")
		}
		for _, l := range lines[h[0]:h[1]] {
			fmt.Fprintln(p.w, l)
		}
	}
	if len(hunks) == 0 {
		fmt.Fprintf(p.w, "(versions %d and %d are identical)\n", versions[0], versions[1])
	}
	return nil
}

// userConfigJSON renders the part of a version the user wrote, in the
// SDKs' JSON, so a diff shows their own fields.
func userConfigJSON(cfg *model.PipelineConfig) (string, error) {
	raw, err := json.MarshalIndent(sdk.PipelineConfig{
		ID: cfg.PipelineID, Name: cfg.Name, Description: cfg.Description, Parallelism: cfg.Parallelism,
		Timeout: cfg.Timeout, RunRetention: cfg.RunRetention, Tasks: cfg.Tasks,
	}, "", "  ")
	return string(raw), err
}

// diffLines is a line diff by longest common subsequence: each result line
// starts with ' ' (both), '-' (only in a) or '+' (only in b). Configs are
// small, so the quadratic table is fine.
func diffLines(a, b []string) []string {
	lcs := make([][]int, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []string
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			out = append(out, " "+a[i])
			i, j = i+1, j+1
		case lcs[i+1][j] >= lcs[i][j+1]:
			out = append(out, "-"+a[i])
			i++
		default:
			out = append(out, "+"+b[j])
			j++
		}
	}
	for ; i < len(a); i++ {
		out = append(out, "-"+a[i])
	}
	for ; j < len(b); j++ {
		out = append(out, "+"+b[j])
	}
	return out
}

// contextHunks returns [start, end) ranges of diff lines that cover every
// change with up to n unchanged lines around it, merging ranges that
// touch.
func contextHunks(lines []string, n int) [][2]int {
	var hunks [][2]int
	for i, l := range lines {
		if l[0] == ' ' {
			continue
		}
		start, end := max(i-n, 0), min(i+n+1, len(lines))
		if k := len(hunks) - 1; k >= 0 && start <= hunks[k][1] {
			hunks[k][1] = max(hunks[k][1], end)
			continue
		}
		hunks = append(hunks, [2]int{start, end})
	}
	return hunks
}
