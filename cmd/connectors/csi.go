package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/connectors-io/connectors/csi"
	"github.com/connectors-io/connectors/tokens"
)

func newCSICommand() *cobra.Command {
	var cluster clusterFlags
	var opts csi.Options
	var caFile string
	cmd := &cobra.Command{
		Use:   "csi",
		Short: "Run the connectors-csi node plugin (CSI Identity and Node services)",
		Long: "csi serves the CSI Identity and Node services on a unix socket. Pods mount inline\n" +
			"ephemeral volumes (driver connectors-csi, readOnly: true) with volumeAttributes such as\n" +
			"connector.name and configuration.names; the driver renders the ConnectorClass\n" +
			"configuration (for example a kubeconfig) with a short-lived token of the pod.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, log, err := cluster.setup()
			if err != nil {
				return err
			}
			if caFile == "" {
				return fmt.Errorf("--proxy-ca-file is required: the gateway CA certificate (PEM)")
			}
			// Re-read when the file changes: a republish after a CA rotation
			// rewrites the volumes.
			opts.ProxyCA = csi.CAFile(caFile)
			if _, err := opts.ProxyCA(); err != nil {
				return err
			}
			cl, err := newClients(cfg)
			if err != nil {
				return err
			}
			opts.Reader, opts.Clientset = cl.client, cl.cs
			opts.Logger = log.WithName("csi")
			driver, err := csi.New(opts)
			if err != nil {
				return err
			}
			return driver.Start(cmd.Context())
		},
	}
	cluster.bind(cmd)
	cmd.Flags().StringVar(&opts.Endpoint, "endpoint", "unix:///csi/csi.sock", "unix socket to serve CSI on")
	cmd.Flags().StringVar(&opts.NodeID, "node-id", os.Getenv("NODE_NAME"), "this node's name ($NODE_NAME when set)")
	cmd.Flags().StringVar(&opts.DriverName, "driver-name", csi.DriverName, "CSI driver name (the CSIDriver object's name)")
	cmd.Flags().StringVar(&caFile, "proxy-ca-file", "", "gateway CA certificate (PEM) written into the configurations")
	cmd.Flags().BoolVar(&opts.PlainDirectory, "plain-directory", false, "write into plain directories instead of tmpfs mounts (unprivileged local runs)")
	cmd.Flags().Int64Var(&opts.TmpfsBytes, "tmpfs-size", 0, "size cap of each volume's tmpfs, in bytes (default and minimum: two generations of the files + 1 MiB, 9 MiB)")
	cmd.Flags().StringVar(&opts.KubeletRoot, "kubelet-root", "", "when set (for example /var/lib/kubelet), accept only target paths <root>/pods/*/volumes/kubernetes.io~csi/*/mount")
	cmd.Flags().StringVar(&opts.Audience, "audience", tokens.DefaultAudience, "audience of the kubelet-provided and minted proxy tokens")
	return cmd
}
