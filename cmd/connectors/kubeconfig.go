package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/connectors-io/connectors/control"
	"github.com/connectors-io/connectors/tokens"
)

// defaultTokenFile is where a pod finds its ServiceAccount token.
const defaultTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// kubeconfigOptions configure `connectors kubeconfig`.
type kubeconfigOptions struct {
	fetch             control.FetchOptions
	tokenFile, output string
}

func (o *kubeconfigOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.fetch.ControlURL, "control-url", "", "base URL of the control API (required)")
	fs.StringVarP(&o.fetch.Namespace, "namespace", "n", "", "namespace of the connector (required)")
	fs.StringVar(&o.fetch.Connector, "connector", "", "name of the connector (required)")
	fs.StringVar(&o.fetch.Configuration, "configuration", "kubeconfig", "configuration of the connector's class")
	fs.StringVar(&o.fetch.File, "file", "", "file of the configuration (default: the configuration's name)")
	fs.StringVar(&o.tokenFile, "token-file", defaultTokenFile, "file holding your ServiceAccount token")
	fs.BoolVar(&o.fetch.AllowInsecure, "insecure-allow-http", false, "allow a plain http --control-url to a host other than loopback (sends your token in clear text)")
	fs.StringVarP(&o.output, "output", "o", "", "write to this file (mode 0600) instead of stdout")
}

func newKubeconfigCommand() *cobra.Command {
	var o kubeconfigOptions
	cmd := &cobra.Command{
		Use:   "kubeconfig",
		Short: "Fetch a connector's rendered kubeconfig from the control API",
		Long: "kubeconfig fetches a configuration file of a connector (by default the kubeconfig of a\n" +
			"k8s connector) from the control API, authenticated with a ServiceAccount token, and\n" +
			"writes it to stdout or -o FILE. Use it where no CSI volume is available: CI runners,\n" +
			"laptops. The file holds a short-lived token; keep it private.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			raw, err := os.ReadFile(o.tokenFile)
			if err != nil {
				return fmt.Errorf("read the ServiceAccount token: %w", err)
			}
			o.fetch.Token = tokens.Token(strings.TrimSpace(string(raw)))
			content, err := control.Fetch(cmd.Context(), o.fetch)
			if err != nil {
				return err
			}
			if o.output == "" || o.output == "-" {
				_, err = cmd.OutOrStdout().Write(content)
				return err
			}
			return control.WritePrivateFile(o.output, content)
		},
	}
	o.AddFlags(cmd.Flags())
	for _, f := range []string{"control-url", "namespace", "connector"} {
		_ = cmd.MarkFlagRequired(f)
	}
	return cmd
}
