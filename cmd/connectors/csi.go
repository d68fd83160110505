package main

import (
	"errors"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/connectors-io/connectors/csi"
	"github.com/connectors-io/connectors/tokens"
)

// csiOptions configure `connectors csi`.
type csiOptions struct {
	cluster clusterOptions
	driver  csi.Options
	caFile  string
}

func (o *csiOptions) AddFlags(fs *pflag.FlagSet, env environment) {
	o.cluster.AddFlags(fs)
	fs.StringVar(&o.driver.Endpoint, "endpoint", "unix:///csi/csi.sock", "unix socket to serve CSI on")
	fs.StringVar(&o.driver.NodeID, "node-id", env.nodeName, "this node's name ($NODE_NAME when set)")
	fs.StringVar(&o.driver.DriverName, "driver-name", csi.DriverName, "CSI driver name (the CSIDriver object's name)")
	fs.StringVar(&o.caFile, "proxy-ca-file", "", "gateway CA certificate (PEM) written into the configurations; required")
	fs.BoolVar(&o.driver.PlainDirectory, "plain-directory", false, "write into plain directories instead of tmpfs mounts (unprivileged local runs)")
	fs.Int64Var(&o.driver.TmpfsBytes, "tmpfs-size", 0, "size cap of each volume's tmpfs, in bytes (default and minimum: two generations of the files + 1 MiB, 9 MiB)")
	fs.StringVar(&o.driver.KubeletRoot, "kubelet-root", "", "when set (for example /var/lib/kubelet), accept only target paths <root>/pods/*/volumes/kubernetes.io~csi/*/mount")
	fs.StringVar(&o.driver.Audience, "audience", tokens.DefaultAudience, "audience of the kubelet-provided and minted proxy tokens")
	fs.StringVar(&o.driver.RegistrationDir, "plugin-registration-path", "", "register with the kubelet in this plugin registration directory (for example /var/lib/kubelet/plugins_registry), instead of the csi-node-driver-registrar sidecar; empty: a sidecar registers the driver")
	addRequireRBACFlag(fs, &o.driver.RequireRBAC)
	fs.StringVar(&o.driver.KubeletEndpoint, "kubelet-registration-path", "", "the driver's socket as the kubelet sees it (a host path when the driver runs in a container; default: the --endpoint socket)")
}

func (o *csiOptions) Validate() error {
	if o.caFile == "" {
		return errors.New("--proxy-ca-file is required: the gateway CA certificate (PEM)")
	}
	return nil
}

func newCSICommand(env environment) *cobra.Command {
	var o csiOptions
	cmd := &cobra.Command{
		Use:   "csi",
		Short: "Run the connectors-csi node plugin (CSI Identity and Node services)",
		Long: "csi serves the CSI Identity and Node services on a unix socket. Pods mount inline\n" +
			"ephemeral volumes (driver connectors-csi, readOnly: true) with volumeAttributes such as\n" +
			"connector.name and configuration.names; the driver renders the ConnectorClass\n" +
			"configuration (for example a kubeconfig) with a short-lived token of the pod.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			// Re-read when the file changes: a republish after a CA rotation
			// rewrites the volumes.
			o.driver.ProxyCA = csi.CAFile(o.caFile)
			if _, err := o.driver.ProxyCA(); err != nil {
				return err
			}
			log, cl, err := o.cluster.connect()
			if err != nil {
				return err
			}
			o.driver.Reader, o.driver.Clientset, o.driver.Logger = cl.client, cl.cs, log.WithName("csi")
			driver, err := csi.New(o.driver)
			if err != nil {
				return err
			}
			return driver.Start(cmd.Context())
		},
	}
	o.AddFlags(cmd.Flags(), env)
	return cmd
}
