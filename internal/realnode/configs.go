package realnode

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"text/template"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	kubeletconfigv1beta1 "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// PauseImage is the sandbox image: kubernetes' pause, built locally.
const PauseImage = "registry.k8s.io/pause:3.10"

// writeConfigs writes the PKI, the kubeconfigs and the daemons' configs.
func (n *Node) writeConfigs() error {
	if err := writePKI(n.path("pki"), n.opts.Name, n.nodeIP); err != nil {
		return err
	}
	for _, dir := range []string{n.path("etc", "cni", "net.d"), n.path("var", "lib", "etcd"), n.kubeletRoot()} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("realnode: %w", err)
		}
	}
	for _, kc := range []struct{ file, user, cert string }{
		{"admin.kubeconfig", "admin", "admin"},
		{"kcm.kubeconfig", "kube-controller-manager", "kube-controller-manager"},
		{"scheduler.kubeconfig", "kube-scheduler", "kube-scheduler"},
		{"kubelet.kubeconfig", "system:node:" + n.opts.Name, "kubelet-client"},
		{"kube-proxy.kubeconfig", "kube-proxy", "kube-proxy"},
	} {
		if err := n.writeKubeconfig(kc.file, kc.user, kc.cert); err != nil {
			return err
		}
	}
	if err := n.writeContainerdConfig(); err != nil {
		return err
	}
	if err := n.writeCNIConfig(); err != nil {
		return err
	}
	if err := n.writeKubeletConfig(); err != nil {
		return err
	}
	if err := n.writeText("kube-proxy.yaml", kubeProxyConfig); err != nil {
		return err
	}
	return n.writeText("Corefile", corefile)
}

// writeKubeconfig writes a kubeconfig for the API server on the
// namespace's loopback with the user's client certificate, all embedded.
func (n *Node) writeKubeconfig(file, user, cert string) error {
	read := func(name string) ([]byte, error) { return os.ReadFile(n.path("pki", name)) }
	ca, err := read("ca.crt")
	if err != nil {
		return fmt.Errorf("realnode: %w", err)
	}
	crt, err := read(cert + ".crt")
	if err != nil {
		return fmt.Errorf("realnode: %w", err)
	}
	key, err := read(cert + ".key")
	if err != nil {
		return fmt.Errorf("realnode: %w", err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[n.opts.Name] = &clientcmdapi.Cluster{Server: fmt.Sprintf("https://127.0.0.1:%d", APIServerPort), CertificateAuthorityData: ca}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: crt, ClientKeyData: key}
	cfg.Contexts[n.opts.Name] = &clientcmdapi.Context{Cluster: n.opts.Name, AuthInfo: user}
	cfg.CurrentContext = n.opts.Name
	if err := clientcmd.WriteToFile(*cfg, n.path("etc", file)); err != nil {
		return fmt.Errorf("realnode: write %s: %w", file, err)
	}
	return nil
}

// containerdConfig is containerd 1.6's CRI configuration.
const containerdConfig = `version = 2
root = "{{.Dir}}/var/lib/containerd"
state = "{{.Dir}}/run/containerd"
[grpc]
  address = "{{.Socket}}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{{.Pause}}"
  disable_apparmor = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_unprivileged_ports = true
  enable_unprivileged_icmp = true
  # This machine's capability bounding set lacks CAP_SYS_RESOURCE: runc
  # cannot lower oom_score_adj (every sandbox would fail with "can't get
  # final child's PID from pipe: EOF"). Clamp containers to containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{{.Dir}}/run/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{{.Dir}}/etc/cni/net.d"
    max_conf_num = 1
`

// containerd2Config is the same for containerd 2 (configuration version 3).
const containerd2Config = `version = 3
root = "{{.Dir}}/var/lib/containerd2"
state = "{{.Dir}}/run/containerd2"
[plugins.'io.containerd.server.v1.grpc']
  address = "{{.Socket}}"
[plugins.'io.containerd.server.v1.ttrpc']
  address = "{{.Socket}}.ttrpc"
[plugins.'io.containerd.nri.v1.nri']
  disable = true
[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "{{.Pause}}"
[plugins.'io.containerd.cri.v1.runtime']
  disable_apparmor = true
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_unprivileged_ports = true
  enable_unprivileged_icmp = true
  cdi_spec_dirs = []
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "{{.NodeBins}}/containerd2/runc"
        SystemdCgroup = false
        Root = "{{.Dir}}/run/runc"
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "{{.Dir}}/etc/cni/net.d"
    max_conf_num = 1
[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
`

func (n *Node) writeContainerdConfig() error {
	src := containerdConfig
	if n.opts.Containerd2 {
		src = containerd2Config
	}
	return n.writeText("containerd.toml", src)
}

// kubeProxyConfig serves ClusterIPs with iptables inside the namespace.
const kubeProxyConfig = `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: {{.Dir}}/etc/kube-proxy.kubeconfig
hostnameOverride: {{.Name}}
mode: iptables
clusterCIDR: {{.PodCIDR}}
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
iptables:
  localhostNodePorts: false
`

// corefile is CoreDNS's configuration: the cluster domain from the API
// server (Services, ExternalName CNAMEs chased inside the zone, pods),
// nothing forwarded (no resolver outside the namespace is reachable).
const corefile = `.:53 {
    bind {{.NodeIP}}
    errors
    kubernetes {{.ClusterDomain}} in-addr.arpa ip6.arpa {
        kubeconfig {{.Dir}}/etc/admin.kubeconfig {{.Name}}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }
    cache 5
    reload 2s
}
`

// writeText renders a template of this file into etc/NAME.
func (n *Node) writeText(name, src string) error {
	t, err := template.New(name).Option("missingkey=error").Parse(src)
	if err != nil {
		return fmt.Errorf("realnode: template %s: %w", name, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, map[string]any{
		"Dir": n.opts.Dir, "Socket": n.containerdSocket(), "Pause": PauseImage, "NodeBins": n.opts.NodeBins,
		"Name": n.opts.Name, "NodeIP": n.opts.NodeIP, "PodCIDR": PodCIDR, "ClusterDomain": ClusterDomain,
	}); err != nil {
		return fmt.Errorf("realnode: template %s: %w", name, err)
	}
	if err := os.WriteFile(n.path("etc", name), b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("realnode: %w", err)
	}
	return nil
}

// writeCNIConfig writes the bridge network of the pods (no masquerade:
// nothing leaves the namespace anyway).
func (n *Node) writeCNIConfig() error {
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "realnode",
		"plugins": []any{map[string]any{
			"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
			"ipam": map[string]any{
				"type":    "host-local",
				"ranges":  [][]map[string]string{{{"subnet": PodCIDR}}},
				"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
				"dataDir": n.path("var", "lib", "cni", "networks"),
			},
		}},
	}
	b, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return fmt.Errorf("realnode: cni config: %w", err)
	}
	if err := os.WriteFile(n.path("etc", "cni", "net.d", "10-realnode.conflist"), b, 0o644); err != nil {
		return fmt.Errorf("realnode: %w", err)
	}
	return nil
}

// writeKubeletConfig writes the kubelet's configuration.
func (n *Node) writeKubeletConfig() error {
	d := func(x time.Duration) metav1.Duration { return metav1.Duration{Duration: x} }
	cfg := kubeletconfigv1beta1.KubeletConfiguration{
		TypeMeta:                 metav1.TypeMeta{APIVersion: "kubelet.config.k8s.io/v1beta1", Kind: "KubeletConfiguration"},
		ContainerRuntimeEndpoint: "unix://" + n.containerdSocket(),
		CgroupDriver:             "cgroupfs", // no systemd here
		// Hybrid cgroups (v1 controllers, cgroup2 for hugetlb only).
		FailCgroupV1: ptr.To(false),
		FailSwapOn:   ptr.To(false),
		Address:      n.opts.NodeIP,
		Port:         10250,
		ReadOnlyPort: 0,
		// The kubelet's own healthz on the namespace's loopback.
		HealthzBindAddress: "127.0.0.1",
		HealthzPort:        ptr.To[int32](10248),
		Authentication: kubeletconfigv1beta1.KubeletAuthentication{
			Anonymous: kubeletconfigv1beta1.KubeletAnonymousAuthentication{Enabled: ptr.To(false)},
			Webhook:   kubeletconfigv1beta1.KubeletWebhookAuthentication{Enabled: ptr.To(true)},
			X509:      kubeletconfigv1beta1.KubeletX509Authentication{ClientCAFile: n.path("pki", "ca.crt")},
		},
		Authorization:     kubeletconfigv1beta1.KubeletAuthorization{Mode: kubeletconfigv1beta1.KubeletAuthorizationModeWebhook},
		TLSCertFile:       n.path("pki", "kubelet-serving.crt"),
		TLSPrivateKeyFile: n.path("pki", "kubelet-serving.key"),
		ClusterDomain:     ClusterDomain,
		ClusterDNS:        []string{n.opts.NodeIP}, // CoreDNS on the node
		// Pods resolve through the cluster DNS only: no host resolver.
		ResolverConfig:              ptr.To(""),
		SerializeImagePulls:         ptr.To(false),
		ImageGCHighThresholdPercent: ptr.To[int32](100),
		ImageGCLowThresholdPercent:  ptr.To[int32](99),
		EvictionHard: map[string]string{
			"memory.available": "1Mi", "nodefs.available": "1%", "nodefs.inodesFree": "1%",
			"imagefs.available": "1%", "imagefs.inodesFree": "1%",
		},
		EvictionPressureTransitionPeriod: d(10 * time.Second),
		// Republish CSI volumes and refresh their tokens often.
		SyncFrequency:             d(10 * time.Second),
		NodeStatusReportFrequency: d(10 * time.Second),
		NodeStatusUpdateFrequency: d(5 * time.Second),
		VolumePluginDir:           n.path("var", "lib", "kubelet-plugins"),
		PodLogsDir:                n.path("var", "log", "pods"),
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("realnode: kubelet config: %w", err)
	}
	if err := os.WriteFile(n.path("etc", "kubelet.yaml"), b, 0o644); err != nil {
		return fmt.Errorf("realnode: %w", err)
	}
	return nil
}

// kubeletRoot is the kubelet's --root-dir.
func (n *Node) kubeletRoot() string { return n.path("var", "lib", "kubelet") }

// containerdSocket is containerd's socket.
func (n *Node) containerdSocket() string {
	return filepath.Join(n.opts.Dir, "run", "containerd", "containerd.sock")
}
