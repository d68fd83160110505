package csi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"k8s.io/apimachinery/pkg/types"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
	"github.com/connectors-io/connectors/render"
	"github.com/connectors-io/connectors/tokens"
)

// Volume context keys set by the kubelet (podInfoOnMount, tokenRequests).
const (
	KeyPodName            = "csi.storage.k8s.io/pod.name"
	KeyPodNamespace       = "csi.storage.k8s.io/pod.namespace"
	KeyPodUID             = "csi.storage.k8s.io/pod.uid"
	KeyServiceAccountName = "csi.storage.k8s.io/serviceAccount.name"
	KeyEphemeral          = "csi.storage.k8s.io/ephemeral"
	// KeyServiceAccountTokens holds the kubelet-provided tokens, a JSON map
	// of audience to {token, expirationTimestamp}, in the volume context or
	// (with serviceAccountTokenInSecrets) in the secrets.
	KeyServiceAccountTokens = "csi.storage.k8s.io/serviceAccount.tokens"
)

// Volume attributes a pod sets.
const (
	AttrConnectorName      = "connector.name"
	AttrConnectorNamespace = "connector.namespace"
	AttrConnectors         = "connectors"
	AttrConfigurationNames = "configuration.names"
	AttrTokenExpiration    = "token.expiration"
	// AttrConfigurationParams is the original's form of configuration
	// parameters: a JSON object keyed by configuration name, for example
	// {"settings":{"mirrorRepository":"maven-public"}}.
	AttrConfigurationParams = "configuration.params"
	// AttrConfigurationParamPrefix prefixes configuration parameter values
	// (this project's flat form, seen by every selected configuration).
	AttrConfigurationParamPrefix = "configuration.params."
)

// MaxTokenExpiration is the longest token.expiration accepted.
const MaxTokenExpiration = 24 * time.Hour

// volumeRequest is a validated NodePublishVolume request.
type volumeRequest struct {
	volumeID   string
	target     string
	pod        tokens.PodRef
	connectors []connectorsv1alpha1.ConnectorRef
	selection  string
	params     map[string]string
	// configParams is configuration.params (JSON).
	configParams map[string]map[string]string
	expiration   time.Duration
	// kubeletToken is the token the kubelet provided, if any.
	kubeletToken   tokens.Token
	kubeletExpires time.Time
}

// parseConfigParams reads configuration.params: a JSON object of
// configuration name to an object of parameter values (strings; numbers and
// booleans are taken as their text).
func parseConfigParams(raw string) (map[string]map[string]string, error) {
	bad := fmt.Errorf(`%s must be a JSON object of configuration name to parameter values, for example {"settings":{"mirrorRepository":"maven-public"}}`, AttrConfigurationParams)
	var byConfig map[string]map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &byConfig); err != nil {
		return nil, bad
	}
	out := make(map[string]map[string]string, len(byConfig))
	for config, values := range byConfig {
		out[config] = make(map[string]string, len(values))
		for name, v := range values {
			var s string
			switch {
			case json.Unmarshal(v, &s) == nil:
			case len(v) > 0 && (v[0] == '-' || (v[0] >= '0' && v[0] <= '9') || string(v) == "true" || string(v) == "false"):
				s = string(v)
			default:
				return nil, fmt.Errorf("%s: %s.%s must be a string", AttrConfigurationParams, config, name)
			}
			out[config][name] = s
		}
	}
	return out, nil
}

func parsePublish(req *csipb.NodePublishVolumeRequest, audience string) (*volumeRequest, error) {
	if req.GetVolumeId() == "" {
		return nil, newError(codes.InvalidArgument, nil, "volume ID is required")
	}
	if req.GetTargetPath() == "" {
		return nil, newError(codes.InvalidArgument, nil, "target path is required")
	}
	if !filepath.IsAbs(req.GetTargetPath()) {
		return nil, newError(codes.InvalidArgument, nil, "target path %q must be absolute", req.GetTargetPath())
	}
	capability := req.GetVolumeCapability()
	if capability == nil {
		return nil, newError(codes.InvalidArgument, nil, "volume capability is required")
	}
	if capability.GetMount() == nil {
		return nil, newError(codes.InvalidArgument, nil, "only mount volumes are supported, not block volumes")
	}
	vc := req.GetVolumeContext()
	if vc[KeyEphemeral] != "true" {
		return nil, newError(codes.InvalidArgument, nil, "%s supports inline ephemeral volumes only (a csi volume in the pod spec)", DriverName)
	}
	if !req.GetReadonly() {
		return nil, newError(codes.InvalidArgument, nil, "the volume must set readOnly: true")
	}
	r := &volumeRequest{volumeID: req.GetVolumeId(), target: filepath.Clean(req.GetTargetPath())}
	r.pod = tokens.PodRef{Namespace: vc[KeyPodNamespace], Name: vc[KeyPodName], UID: types.UID(vc[KeyPodUID]), ServiceAccount: vc[KeyServiceAccountName]}
	if r.pod.Namespace == "" || r.pod.Name == "" || r.pod.UID == "" || r.pod.ServiceAccount == "" {
		return nil, newError(codes.InvalidArgument, nil, "the volume context lacks the pod's name, namespace, uid or serviceAccount.name: the CSIDriver %s must set podInfoOnMount: true", DriverName)
	}
	refs, err := connectorRefs(vc, r.pod.Namespace)
	if err != nil {
		return nil, err
	}
	r.connectors = refs
	r.selection = vc[AttrConfigurationNames]
	if _, err := render.ParseSelection(r.selection); err != nil {
		return nil, newError(codes.InvalidArgument, err, "%s", err.Error())
	}
	r.params = map[string]string{}
	for k, v := range vc {
		if name, ok := strings.CutPrefix(k, AttrConfigurationParamPrefix); ok && name != "" {
			r.params[name] = v
		}
	}
	if raw := vc[AttrConfigurationParams]; raw != "" {
		if r.configParams, err = parseConfigParams(raw); err != nil {
			return nil, newError(codes.InvalidArgument, nil, "%s", err.Error())
		}
	}
	r.expiration = tokens.DefaultExpiration
	if s := vc[AttrTokenExpiration]; s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < tokens.MinExpiration || d > MaxTokenExpiration {
			return nil, newError(codes.InvalidArgument, err, "%s %q must be a Go duration between %s and %s, for example 30m", AttrTokenExpiration, s, tokens.MinExpiration, MaxTokenExpiration)
		}
		r.expiration = d
	}
	raw := req.GetSecrets()[KeyServiceAccountTokens]
	if raw == "" {
		raw = vc[KeyServiceAccountTokens]
	}
	if raw != "" {
		var toks map[string]struct {
			Token               string    `json:"token"`
			ExpirationTimestamp time.Time `json:"expirationTimestamp"`
		}
		if err := json.Unmarshal([]byte(raw), &toks); err != nil {
			// The JSON error could quote the token; do not pass it on.
			return nil, newError(codes.InvalidArgument, nil, "%s is not a JSON map of audience to {token, expirationTimestamp}", KeyServiceAccountTokens)
		}
		if t, ok := toks[audience]; ok && t.Token != "" {
			r.kubeletToken, r.kubeletExpires = tokens.Token(t.Token), t.ExpirationTimestamp
		}
	}
	return r, nil
}

// connectorRefs reads connector.name (+ connector.namespace) and connectors.
func connectorRefs(vc map[string]string, podNamespace string) ([]connectorsv1alpha1.ConnectorRef, error) {
	var refs []connectorsv1alpha1.ConnectorRef
	seen := map[connectorsv1alpha1.ConnectorRef]bool{}
	add := func(ref connectorsv1alpha1.ConnectorRef) error {
		if !ref.Valid() {
			// A malformed name can never become a connector: InvalidArgument,
			// so the kubelet does not retry it forever.
			return newError(codes.InvalidArgument, nil, "connector reference %q must be a name or namespace/name of Kubernetes object names (lower case letters, digits, '-' and '.')", ref.String())
		}
		if !seen[ref] {
			seen[ref] = true
			refs = append(refs, ref)
		}
		return nil
	}
	if name := strings.TrimSpace(vc[AttrConnectorName]); name != "" {
		ns := strings.TrimSpace(vc[AttrConnectorNamespace])
		if ns == "" {
			ns = podNamespace
		}
		if err := add(connectorsv1alpha1.ConnectorRef{Namespace: ns, Name: name}); err != nil {
			return nil, err
		}
	} else if vc[AttrConnectorNamespace] != "" {
		return nil, newError(codes.InvalidArgument, nil, "%s is set but %s is missing", AttrConnectorNamespace, AttrConnectorName)
	}
	for _, part := range strings.Split(vc[AttrConnectors], ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		ref := connectorsv1alpha1.ConnectorRef{Namespace: podNamespace, Name: part}
		if ns, name, ok := strings.Cut(part, "/"); ok {
			ref = connectorsv1alpha1.ConnectorRef{Namespace: ns, Name: name}
		}
		if err := add(ref); err != nil {
			return nil, err
		}
	}
	if len(refs) == 0 {
		return nil, newError(codes.InvalidArgument, nil, "volume attribute %s (or %s) is required: name the connector to use", AttrConnectorName, AttrConnectors)
	}
	return refs, nil
}

// NodePublishVolume renders the volume's configurations into the target
// path; called again by the kubelet (requiresRepublish), it rewrites only
// what changed.
func (d *Driver) NodePublishVolume(ctx context.Context, req *csipb.NodePublishVolumeRequest) (*csipb.NodePublishVolumeResponse, error) {
	vr, err := parsePublish(req, d.opts.Audience)
	if err != nil {
		return nil, grpcError(err)
	}
	unlock, err := d.locks.lock(ctx, vr.target)
	if err != nil {
		return nil, grpcError(newError(codes.Aborted, err, "another operation on target %s is in progress", vr.target))
	}
	defer unlock()
	log := d.opts.Logger.WithValues("volumeID", vr.volumeID, "pod", vr.pod.Namespace+"/"+vr.pod.Name)

	if err := d.checkTarget(vr.target); err != nil {
		return nil, grpcError(err)
	}
	published, err := isPublished(vr.target)
	if err != nil {
		return nil, grpcError(err)
	}
	// A target that existed before a first publish is not the driver's to
	// remove: a failed publish only undoes its own mount and files.
	_, statErr := os.Lstat(vr.target)
	removeDir := errors.Is(statErr, fs.ErrNotExist)
	files, state, err := d.renderVolume(ctx, vr)
	if err != nil {
		if !published {
			// Nothing may be left behind by a failed first publish.
			if cerr := d.cleanup(vr.target, removeDir); cerr != nil {
				log.Error(cerr, "clean up after a failed publish", "target", vr.target)
			}
		}
		return nil, grpcError(err)
	}
	if !published {
		tmpfs, err := d.mount(vr.target)
		if err != nil {
			if cerr := d.cleanup(vr.target, removeDir); cerr != nil {
				log.Error(cerr, "clean up after a failed mount", "target", vr.target)
			}
			return nil, grpcError(err)
		}
		if !tmpfs {
			log.Info("WARNING: writing to a plain directory instead of a tmpfs; the files reach the node's disk", "target", vr.target)
		}
	}
	written, err := writeAtomic(vr.target, files, d.opts.Now())
	if err != nil {
		if !published {
			if cerr := d.cleanup(vr.target, removeDir); cerr != nil {
				log.Error(cerr, "clean up after a failed write", "target", vr.target)
			}
		}
		return nil, grpcError(fmt.Errorf("write the files to %s: %w", vr.target, err))
	}
	if state != nil {
		d.volumes.Add(vr.target, *state)
	}
	log.V(1).Info("volume published", "target", vr.target, "republish", published, "written", written, "files", len(files))
	return &csipb.NodePublishVolumeResponse{}, nil
}

// renderVolume resolves, picks the token and renders. The state is the
// minted token to remember (nil for a kubelet-provided one).
func (d *Driver) renderVolume(ctx context.Context, vr *volumeRequest) (render.Files, *volumeState, error) {
	id := tokens.Identity{Namespace: vr.pod.Namespace, ServiceAccountName: vr.pod.ServiceAccount, PodName: vr.pod.Name, PodUID: string(vr.pod.UID)}
	res, err := d.resolver.Resolve(ctx, id, vr.connectors)
	if err != nil {
		return nil, nil, renderError(err)
	}
	token, state, err := d.token(ctx, vr)
	if err != nil {
		return nil, nil, err
	}
	// Read on every publish: a republish after a CA rotation rewrites the
	// files holding it.
	ca, err := d.opts.ProxyCA()
	if err != nil || len(ca) == 0 {
		return nil, nil, newError(codes.Unavailable, err, "cannot read the gateway CA certificate now; try again later")
	}
	files, err := render.Render(render.Input{
		Class: res.Class, Classes: res.Classes, Connectors: res.Connectors, Token: token, ProxyCACert: ca,
		Selection: vr.selection, Params: vr.params, ConfigParams: vr.configParams, Limits: d.opts.RenderLimits,
	})
	if err != nil {
		return nil, nil, renderError(err)
	}
	return files, state, nil
}

// token returns the kubelet's token, the remembered minted one while it has
// used less than RefreshAfter of its life, or a newly minted one.
func (d *Driver) token(ctx context.Context, vr *volumeRequest) (tokens.Token, *volumeState, error) {
	if vr.kubeletToken != "" {
		d.volumes.Remove(vr.target)
		return vr.kubeletToken, nil, nil
	}
	selector := fmt.Sprintf("%s/%s/%s/%s/%s", vr.pod.Namespace, vr.pod.Name, vr.pod.UID, vr.pod.ServiceAccount, vr.expiration)
	now := d.opts.Now()
	if st, ok := d.volumes.Get(vr.target); ok && st.selector == selector {
		refreshAt := st.issued.Add(time.Duration(float64(st.expires.Sub(st.issued)) * d.opts.RefreshAfter))
		if now.Before(refreshAt) {
			return st.token, &st, nil
		}
	}
	tok, exp, err := d.opts.Minter.MintForPod(ctx, vr.pod, vr.expiration)
	if err != nil {
		return "", nil, newError(codes.Unavailable, err, "cannot mint a token for serviceaccount %s/%s of pod %s now; try again later", vr.pod.Namespace, vr.pod.ServiceAccount, vr.pod.Name)
	}
	return tok, &volumeState{token: tok, issued: now, expires: exp, selector: selector}, nil
}

// NodeUnpublishVolume unmounts and removes the target path. It is
// idempotent: an absent target is success.
func (d *Driver) NodeUnpublishVolume(ctx context.Context, req *csipb.NodeUnpublishVolumeRequest) (*csipb.NodeUnpublishVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, grpcError(newError(codes.InvalidArgument, nil, "volume ID is required"))
	}
	if req.GetTargetPath() == "" || !filepath.IsAbs(req.GetTargetPath()) {
		return nil, grpcError(newError(codes.InvalidArgument, nil, "an absolute target path is required"))
	}
	target := filepath.Clean(req.GetTargetPath())
	unlock, err := d.locks.lock(ctx, target)
	if err != nil {
		return nil, grpcError(newError(codes.Aborted, err, "another operation on target %s is in progress", target))
	}
	defer unlock()
	if err := d.checkTarget(target); err != nil {
		return nil, grpcError(err)
	}
	d.volumes.Remove(target)
	err = d.cleanup(target, true)
	if errors.Is(err, errForeignContent) {
		// The driver's own files are gone; what remains is not its to delete.
		d.opts.Logger.Info("WARNING: unpublished, but the target keeps entries the driver did not write", "volumeID", req.GetVolumeId(), "target", target)
		err = nil
	}
	if err != nil {
		return nil, grpcError(fmt.Errorf("unpublish %s: %w", target, err))
	}
	return &csipb.NodeUnpublishVolumeResponse{}, nil
}

// sortedKeys returns the keys of m, sorted.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// checkTarget refuses a target outside the kubelet's CSI volume layout
// when Options.KubeletRoot is set.
func (d *Driver) checkTarget(target string) error {
	if d.opts.KubeletRoot == "" {
		return nil
	}
	pattern := filepath.Join(filepath.Clean(d.opts.KubeletRoot), "pods", "*", "volumes", "kubernetes.io~csi", "*", "mount")
	if ok, err := filepath.Match(pattern, target); err != nil || !ok {
		return newError(codes.InvalidArgument, err, "target path %q is not a CSI volume mount of the kubelet (%s)", target, pattern)
	}
	return nil
}
