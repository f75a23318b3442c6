package cli

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/urfave/cli/v2"
)

// extensionDebug prints the running extension's debug dump
// (GET /api/extensions/{id}/debug), indented when it is JSON.
func extensionDebug(c *cli.Context) error {
	p, cl, err := setup(c, 1)
	if err != nil {
		return err
	}
	info, err := cl.DebugExtension(c.Context, c.Args().First())
	if err != nil {
		return err
	}
	if p.format != "plain" {
		return p.result("", map[string]string{"info": info}, nil, nil)
	}
	var pretty bytes.Buffer
	if json.Valid([]byte(info)) && json.Indent(&pretty, []byte(info), "", "  ") == nil {
		info = pretty.String()
	}
	fmt.Fprintln(p.w, info)
	return nil
}
