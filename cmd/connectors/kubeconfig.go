package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/connectors-io/connectors/csi"
	"github.com/connectors-io/connectors/tokens"
)

// defaultTokenFile is where a pod finds its ServiceAccount token.
const defaultTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"

func newKubeconfigCommand() *cobra.Command {
	var opts csi.FetchOptions
	var tokenFile, output string
	cmd := &cobra.Command{
		Use:   "kubeconfig",
		Short: "Fetch a connector's rendered kubeconfig from the control API",
		Long: "kubeconfig fetches a configuration file of a connector (by default the kubeconfig of a\n" +
			"k8s connector) from the control API, authenticated with a ServiceAccount token, and\n" +
			"writes it to stdout or -o FILE. Use it where no CSI volume is available: CI runners,\n" +
			"laptops. The file holds a short-lived token; keep it private.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			raw, err := os.ReadFile(tokenFile)
			if err != nil {
				return fmt.Errorf("read the ServiceAccount token: %w", err)
			}
			opts.Token = tokens.Token(strings.TrimSpace(string(raw)))
			content, err := csi.Fetch(cmd.Context(), opts)
			if err != nil {
				return err
			}
			if output == "" || output == "-" {
				_, err = cmd.OutOrStdout().Write(content)
				return err
			}
			return csi.WritePrivateFile(output, content)
		},
	}
	cmd.Flags().StringVar(&opts.ControlURL, "control-url", "", "base URL of the control API (required)")
	cmd.Flags().StringVarP(&opts.Namespace, "namespace", "n", "", "namespace of the connector (required)")
	cmd.Flags().StringVar(&opts.Connector, "connector", "", "name of the connector (required)")
	cmd.Flags().StringVar(&opts.Configuration, "configuration", "kubeconfig", "configuration of the connector's class")
	cmd.Flags().StringVar(&opts.File, "file", "", "file of the configuration (default: the configuration's name)")
	cmd.Flags().StringVar(&tokenFile, "token-file", defaultTokenFile, "file holding your ServiceAccount token")
	cmd.Flags().BoolVar(&opts.AllowInsecure, "insecure-allow-http", false, "allow a plain http --control-url to a host other than loopback (sends your token in clear text)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to this file (mode 0600) instead of stdout")
	for _, f := range []string{"control-url", "namespace", "connector"} {
		_ = cmd.MarkFlagRequired(f)
	}
	return cmd
}
