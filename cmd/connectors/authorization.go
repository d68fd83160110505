package main

import "github.com/spf13/pflag"

// addRequireRBACFlag binds --require-rbac, the same on the gateway, the
// CSI driver and the control API.
func addRequireRBACFlag(fs *pflag.FlagSet, v *bool) {
	fs.BoolVar(v, "require-rbac", false, "require RBAC get on a connector also from its own namespace (by default workloads of the connector's namespace may use it without; other namespaces, kube-public included, always need get)")
}
