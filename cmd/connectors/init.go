package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/connectors-io/connectors/gateway"
)

func newInitCommand() *cobra.Command {
	o := gateway.InitOptions{UID: -1, GID: -1}
	var owner string
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write a gateway CA and a shared key into a state directory (where no Secret mounts them: compose.yaml)",
		Long: "init writes " + gateway.CACertFileName + ", " + gateway.CAKeyFileName + " and " + gateway.SharedKeyFileName +
			" into --dir unless they are there already; usable files are\n" +
			"kept (kubeconfigs issued earlier trust that CA), unusable ones are an error and stay untouched.\n" +
			"The gateway reads them with --ca-cert-file, --ca-key-file and --shared-key-file, the controller\n" +
			"the certificate with --proxy-ca-file. On a cluster the chart makes them as Secrets instead.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if owner != "" {
				uid, gid, err := parseOwner(owner)
				if err != nil {
					return err
				}
				o.UID, o.GID = uid, gid
			}
			written, err := gateway.InitFiles(o)
			if err != nil {
				return err
			}
			if len(written) == 0 {
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s already holds a usable CA and shared key: kept\n", o.Dir)
			} else {
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s: wrote %s\n", o.Dir, strings.Join(written, ", "))
			}
			return err
		},
	}
	cmd.Flags().StringVar(&o.Dir, "dir", "/var/lib/connectors", "state directory (created with mode 0700)")
	cmd.Flags().StringVar(&o.CommonName, "common-name", "connectors gateway", "common name of a generated CA")
	cmd.Flags().StringVar(&owner, "owner", "", "UID:GID to own the directory and its files (needs root; default: leave as written)")
	return cmd
}

// parseOwner reads "UID:GID" of two numbers.
func parseOwner(s string) (uid, gid int, err error) {
	u, g, ok := strings.Cut(s, ":")
	if ok {
		uid, err = strconv.Atoi(u)
		if err == nil {
			gid, err = strconv.Atoi(g)
		}
	}
	if !ok || err != nil || uid < 0 || gid < 0 {
		return 0, 0, fmt.Errorf("--owner %q: want UID:GID, two numbers", s)
	}
	return uid, gid, nil
}
