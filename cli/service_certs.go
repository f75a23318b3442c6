package cli

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/goferhq/gofer/internal/tlsutil"
)

func genCertsCommand() *cli.Command {
	return &cli.Command{
		Name:      "gen-certs",
		Usage:     "write a CA and node certificates for a test cluster",
		ArgsUsage: "DIR",
		Description: `Writes into DIR a cluster CA (ca.pem, ca-key.pem), node certificates
node-1.pem … node-N.pem with keys node-N-key.pem (server and client use, so
one serves the API, raft's mutual TLS and calls to other members) and a client
certificate (client.pem, client-key.pem). Keys are ECDSA P-256 and mode 0600;
node certificates last a year, the CA five. Every node certificate names every
--hosts entry. Existing files are never overwritten.

For production, issue certificates from your own PKI; see docs/tls.md.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "hosts", Usage: "comma-separated IP addresses and DNS names the node certificates are valid for", Value: "127.0.0.1,localhost"},
			&cli.IntFlag{Name: "nodes", Usage: "how many node certificates", Value: 3},
		},
		Action: func(c *cli.Context) error {
			if err := args(c, 1); err != nil {
				return err
			}
			var hosts []string
			for _, h := range strings.Split(c.String("hosts"), ",") {
				if h = strings.TrimSpace(h); h != "" {
					hosts = append(hosts, h)
				}
			}
			b, err := tlsutil.GenerateBundle(c.Args().First(), tlsutil.GenOptions{Hosts: hosts, Nodes: c.Int("nodes")})
			if err != nil {
				return err
			}
			w := c.App.Writer
			fmt.Fprintf(w, "CA:      %s (key %s — keep it offline)\n", b.CA, b.CAKey)
			for i := range b.Nodes {
				fmt.Fprintf(w, "node %d:  %s (key %s)\n", i+1, b.Nodes[i], b.NodeKeys[i])
			}
			fmt.Fprintf(w, "client:  %s (key %s)\n", b.Client, b.ClientKey)
			fmt.Fprintf(w, "valid for: %s\n", strings.Join(hosts, ", "))
			return nil
		},
	}
}
