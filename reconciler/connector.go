package reconciler

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	connectorsv1alpha1 "github.com/connectors-io/connectors/api/v1alpha1"
)

// +kubebuilder:rbac:groups=connectors.alauda.io,resources=connectors;connectorclasses,verbs=get;list;watch
// +kubebuilder:rbac:groups=connectors.alauda.io,resources=connectors/status;connectorclasses/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch;delete

// ConnectorReconciler reconciles the status of one Connector per call.
type ConnectorReconciler struct {
	opts Options
	cel  *probeCEL
}

var _ reconcile.Reconciler = (*ConnectorReconciler)(nil)

// NewConnectorReconciler checks opts and fills defaults.
func NewConnectorReconciler(opts Options) (*ConnectorReconciler, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	judge, err := newProbeCEL()
	if err != nil {
		return nil, err
	}
	return &ConnectorReconciler{opts: opts, cel: judge}, nil
}

// retryNotReady is how soon a connector that is not Ready is probed again
// when nothing it watches changes (a target coming back, for example).
const retryNotReady = time.Minute

// Reconcile evaluates the connector's conditions, ensures its proxy Service
// and writes its status.
func (r *ConnectorReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var c connectorsv1alpha1.Connector
	if err := r.opts.Client.Get(ctx, req.NamespacedName, &c); err != nil {
		if apierrors.IsNotFound(err) {
			return reconcile.Result{}, nil // deleted: its Service goes with it (owner reference)
		}
		return reconcile.Result{}, fmt.Errorf("get connector %s: %w", req, err)
	}
	if !c.DeletionTimestamp.IsZero() {
		return reconcile.Result{}, nil
	}
	ev, err := r.evaluate(ctx, &c)
	if err != nil {
		return reconcile.Result{}, err
	}
	ready, err := r.writeStatus(ctx, &c, ev)
	if err != nil {
		if apierrors.IsConflict(err) {
			return reconcile.Result{RequeueAfter: time.Second}, nil // another writer won: read again soon
		}
		return reconcile.Result{}, err
	}
	after := jittered(r.opts.Resync)
	if ready.Status != metav1.ConditionTrue && after > retryNotReady {
		after = jittered(retryNotReady)
	}
	return reconcile.Result{RequeueAfter: after}, nil
}

// evaluation is what the steps found.
type evaluation struct {
	conditions []connectorsv1alpha1.Condition
	proxy      *connectorsv1alpha1.ProxyStatus
}

func cond(t string, s metav1.ConditionStatus, reason, msgFmt string, args ...any) connectorsv1alpha1.Condition {
	return connectorsv1alpha1.Condition{Type: t, Status: s, Reason: reason, Message: fmt.Sprintf(msgFmt, args...)}
}

func ok(t string) connectorsv1alpha1.Condition {
	return connectorsv1alpha1.Condition{Type: t, Status: metav1.ConditionTrue}
}

func waiting(t, on string) connectorsv1alpha1.Condition {
	return cond(t, metav1.ConditionUnknown, "Waiting", "not checked: %s is not True", on)
}

// evaluate runs the steps in order. An error is returned only for faults
// worth a retry with backoff (API errors other than not-found).
func (r *ConnectorReconciler) evaluate(ctx context.Context, c *connectorsv1alpha1.Connector) (evaluation, error) {
	var ev evaluation
	add := func(cs ...connectorsv1alpha1.Condition) { ev.conditions = append(ev.conditions, cs...) }
	// CACertReady depends on the connector alone: it is told on every path.
	caCond, own, err := r.checkCACert(ctx, c)
	if err != nil {
		return ev, err
	}
	add(caCond)

	var class connectorsv1alpha1.ConnectorClass
	if err := r.opts.Client.Get(ctx, client.ObjectKey{Name: c.Spec.ConnectorClassName}, &class); err != nil {
		if !apierrors.IsNotFound(err) {
			return ev, fmt.Errorf("get connectorclass %s: %w", c.Spec.ConnectorClassName, err)
		}
		add(cond(connectorsv1alpha1.ConditionConnectorClassReady, metav1.ConditionFalse, connectorsv1alpha1.ReasonConnectorClassNotFound,
			"ConnectorClass %q not found: create it or set spec.connectorClassName to one of `kubectl get connectorclass`", c.Spec.ConnectorClassName))
		for _, t := range connectorsv1alpha1.ConnectorConditionTypes()[1:] {
			add(waiting(t, connectorsv1alpha1.ConditionConnectorClassReady))
		}
		return ev, nil
	}
	if bad := connectorsv1alpha1.CheckContract(c, &class); bad != nil {
		// The original refuses such a connector at admission; here it is a
		// condition (no webhook, so no certificate to run and no failure
		// mode that blocks every write of the CRD).
		add(cond(connectorsv1alpha1.ConditionConnectorClassReady, metav1.ConditionFalse, bad.Reason, "%s", bad.Message))
		for _, t := range connectorsv1alpha1.ConnectorConditionTypes()[1:] {
			add(waiting(t, connectorsv1alpha1.ConditionConnectorClassReady))
		}
		return ev, nil
	}
	add(ok(connectorsv1alpha1.ConditionConnectorClassReady))
	// Probes see the class's defaults for what the connector omits.
	c = c.WithClassDefaults(&class)

	secretCond, secret, err := r.checkSecret(ctx, c, &class)
	if err != nil {
		return ev, err
	}
	add(secretCond)

	liveCond, roots, err := r.checkLiveness(ctx, c, &class, secret, caCond, own)
	if err != nil {
		return ev, err
	}
	add(liveCond)

	switch {
	case secretCond.Status != metav1.ConditionTrue:
		add(waiting(connectorsv1alpha1.ConditionAuthReady, connectorsv1alpha1.ConditionSecretReady))
	case liveCond.Status != metav1.ConditionTrue:
		add(waiting(connectorsv1alpha1.ConditionAuthReady, connectorsv1alpha1.ConditionLivenessReady))
	default:
		add(r.checkAuth(ctx, c, &class, secret, roots))
	}

	proxyCond, proxy, err := r.ensureProxyService(ctx, c, &class)
	if err != nil {
		return ev, err
	}
	add(proxyCond)
	ev.proxy = proxy
	return ev, nil
}

// wellKnownKeys are the keys Secrets of well-known types must hold.
var wellKnownKeys = map[corev1.SecretType][]string{
	connectorsv1alpha1.SecretTypeBearerToken:               {connectorsv1alpha1.BearerTokenKey},
	corev1.SecretTypeBasicAuth:                             {corev1.BasicAuthUsernameKey, corev1.BasicAuthPasswordKey},
	connectorsv1alpha1.SecretTypeGitLabPAT:                 {connectorsv1alpha1.GitLabPATKey},
	connectorsv1alpha1.SecretTypeDistributionRegistryToken: {corev1.BasicAuthUsernameKey, corev1.BasicAuthPasswordKey},
	corev1.SecretTypeSSHAuth:                               {corev1.SSHAuthPrivateKey},
	corev1.SecretTypeDockerConfigJson:                      {corev1.DockerConfigJsonKey},
}

// checkSecret returns SecretReady and, when it is True and a Secret is
// given, the Secret.
func (r *ConnectorReconciler) checkSecret(ctx context.Context, c *connectorsv1alpha1.Connector, class *connectorsv1alpha1.ConnectorClass) (connectorsv1alpha1.Condition, *corev1.Secret, error) {
	const t = connectorsv1alpha1.ConditionSecretReady
	fail := func(format string, args ...any) (connectorsv1alpha1.Condition, *corev1.Secret, error) {
		return cond(t, metav1.ConditionFalse, connectorsv1alpha1.ReasonSecretNotFound, format, args...), nil, nil
	}
	names := make([]string, 0, len(class.Spec.Auth.Types))
	for _, at := range class.Spec.Auth.Types {
		names = append(names, at.Name)
	}
	auth := c.Spec.Auth
	if auth.Name == "" && auth.SecretRef == nil {
		for _, at := range class.Spec.Auth.Types {
			if !at.Optional {
				return fail("spec.auth is required: ConnectorClass %s authenticates with one of %v", class.Name, names)
			}
		}
		return cond(t, metav1.ConditionTrue, connectorsv1alpha1.ReasonSecretOptional, "no credential configured; ConnectorClass %s does not require one", class.Name), nil, nil
	}
	i := slices.IndexFunc(class.Spec.Auth.Types, func(at connectorsv1alpha1.AuthType) bool { return at.Name == auth.Name })
	if i < 0 {
		return fail("spec.auth.name %q is not an authentication type of ConnectorClass %s: use one of %v", auth.Name, class.Name, names)
	}
	at := class.Spec.Auth.Types[i]
	if auth.SecretRef == nil {
		if at.Optional {
			return cond(t, metav1.ConditionTrue, connectorsv1alpha1.ReasonSecretOptional, "authentication type %s is optional and no Secret is configured", at.Name), nil, nil
		}
		return fail("spec.auth.secretRef is required: authentication type %s needs a Secret of type %s", at.Name, at.SecretType)
	}
	if ns := auth.SecretRef.Namespace; ns != "" && ns != c.Namespace {
		return fail("spec.auth.secretRef must name a Secret in the connector's namespace %s, not %s", c.Namespace, ns)
	}
	var s corev1.Secret
	if err := r.opts.APIReader.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: auth.SecretRef.Name}, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return fail("Secret %s not found in namespace %s: create it (type %s)", auth.SecretRef.Name, c.Namespace, typeOrAny(at.SecretType))
		}
		return connectorsv1alpha1.Condition{}, nil, fmt.Errorf("get secret %s/%s: %w", c.Namespace, auth.SecretRef.Name, err)
	}
	if at.SecretType != "" && s.Type != at.SecretType {
		return fail("Secret %s has type %s, authentication type %s needs type %s", s.Name, s.Type, at.Name, at.SecretType)
	}
	required := wellKnownKeys[s.Type]
	for _, p := range at.Params {
		required = append(required, p.Name)
	}
	var missing []string
	for _, k := range required {
		if len(s.Data[k]) == 0 {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return fail("Secret %s lacks the key(s) %s that authentication type %s needs", s.Name, strings.Join(missing, ", "), at.Name)
	}
	return ok(t), &s, nil
}

func typeOrAny(t corev1.SecretType) corev1.SecretType {
	if t == "" {
		return "any"
	}
	return t
}

// checkCACert returns CACertReady (severity Info, outside Ready) and the
// connector's own CA Secret, nil when it names none or it is missing.
func (r *ConnectorReconciler) checkCACert(ctx context.Context, c *connectorsv1alpha1.Connector) (connectorsv1alpha1.Condition, *corev1.Secret, error) {
	const t = connectorsv1alpha1.ConditionCACertReady
	info := func(cd connectorsv1alpha1.Condition) connectorsv1alpha1.Condition {
		cd.Severity = connectorsv1alpha1.SeverityInfo
		return cd
	}
	ref := c.Spec.CACertSecretRef
	if ref == nil {
		return info(cond(t, metav1.ConditionTrue, connectorsv1alpha1.ReasonNoCACert,
			"no spec.caCertSecretRef: the target is trusted by the system roots and the CA Secrets of the install namespace")), nil, nil
	}
	own := &corev1.Secret{}
	if err := r.opts.APIReader.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: ref.Name}, own); err != nil {
		if apierrors.IsNotFound(err) {
			return info(cond(t, metav1.ConditionFalse, connectorsv1alpha1.ReasonSecretNotFound,
				"spec.caCertSecretRef: Secret %s not found in namespace %s", ref.Name, c.Namespace)), nil, nil
		}
		return connectorsv1alpha1.Condition{}, nil, fmt.Errorf("get secret %s/%s: %w", c.Namespace, ref.Name, err)
	}
	if !connectorsv1alpha1.AppendCABundle(x509.NewCertPool(), own) {
		return info(cond(t, metav1.ConditionFalse, connectorsv1alpha1.ReasonInvalidPEM,
			"spec.caCertSecretRef: Secret %s holds no PEM certificate (%s)", ref.Name, connectorsv1alpha1.CABundleKeysDescription)), own, nil
	}
	return info(cond(t, metav1.ConditionTrue, connectorsv1alpha1.ReasonValid, "Secret %s holds the CA the target is trusted with", ref.Name)), own, nil
}

// checkLiveness returns LivenessReady and the trust roots for the target;
// caCert is CACertReady and own the connector's CA Secret.
func (r *ConnectorReconciler) checkLiveness(ctx context.Context, c *connectorsv1alpha1.Connector, class *connectorsv1alpha1.ConnectorClass, secret *corev1.Secret,
	caCert connectorsv1alpha1.Condition, own *corev1.Secret) (connectorsv1alpha1.Condition, *x509.CertPool, error) {
	const t = connectorsv1alpha1.ConditionLivenessReady
	// An unusable caCertSecretRef adds nothing to the roots (CACertReady
	// says why); the target may still be trusted otherwise.
	roots, err := r.trustPool(ctx, own)
	if err != nil {
		return connectorsv1alpha1.Condition{}, nil, err
	}
	pool := roots
	p := class.Spec.LivenessProbe
	if p == nil || p.HTTP == nil {
		return cond(t, metav1.ConditionTrue, connectorsv1alpha1.ReasonNonLivenessProbe, "ConnectorClass %s declares no HTTP liveness probe", class.Name), pool, nil
	}
	out := r.runProbe(ctx, p.HTTP, newProbeData(c, secret), roots)
	switch {
	case errors.Is(out.err, errUnknownAuthority) && caCert.Status == metav1.ConditionFalse:
		return cond(t, metav1.ConditionFalse, connectorsv1alpha1.ReasonConnectionFailed,
			"liveness probe %s: %s, and %s", out.target, out.err, caCert.Message), pool, nil
	case errors.Is(out.err, errUnknownAuthority):
		// The one way out: trust the target's CA (verification is never skipped).
		ca := c.Name + "-ca"
		return cond(t, metav1.ConditionFalse, connectorsv1alpha1.ReasonConnectionFailed,
			"liveness probe %s: %s. Trust its CA: kubectl create secret generic %s -n %s --from-file=ca.crt=<the target's CA certificate> && "+
				"kubectl patch connector %s -n %s --type=merge -p '{\"spec\":{\"caCertSecretRef\":{\"name\":\"%s\"}}}' "+
				"(or, for every connector, label a CA Secret of the install namespace %s=true); TLS verification is never skipped",
			out.target, out.err, ca, c.Namespace, c.Name, c.Namespace, ca, connectorsv1alpha1.CACertLabel), pool, nil
	case out.err != nil:
		return cond(t, metav1.ConditionFalse, connectorsv1alpha1.ReasonConnectionFailed, "liveness probe %s: %s", out.target, out.err), pool, nil
	case out.cel != "":
		if pass, why := r.judge(ctx, out); !pass {
			return cond(t, metav1.ConditionFalse, connectorsv1alpha1.ReasonConnectionFailed, "liveness probe %s answered %d %s, and %s", out.target, out.status, http.StatusText(out.status), why), pool, nil
		}
	case out.status < 200 || out.status > 299:
		return cond(t, metav1.ConditionFalse, connectorsv1alpha1.ReasonConnectionFailed,
			"liveness probe %s answered %d %s, want a 2xx status", out.target, out.status, http.StatusText(out.status)), pool, nil
	}
	return ok(t), pool, nil
}

// checkAuth returns AuthReady.
func (r *ConnectorReconciler) checkAuth(ctx context.Context, c *connectorsv1alpha1.Connector, class *connectorsv1alpha1.ConnectorClass, secret *corev1.Secret, roots *x509.CertPool) connectorsv1alpha1.Condition {
	const t = connectorsv1alpha1.ConditionAuthReady
	i := slices.IndexFunc(class.Spec.AuthProbes, func(p connectorsv1alpha1.AuthProbe) bool { return p.AuthName == c.Spec.Auth.Name })
	if i < 0 || class.Spec.AuthProbes[i].Probe.HTTP == nil {
		if secret != nil && secret.Type == connectorsv1alpha1.SecretTypeDistributionRegistryToken {
			return r.checkRegistryLogin(ctx, c, secret, roots)
		}
		return cond(t, metav1.ConditionTrue, connectorsv1alpha1.ReasonNonAuthProbe, "ConnectorClass %s declares no HTTP auth probe for %q", class.Name, c.Spec.Auth.Name)
	}
	probe := class.Spec.AuthProbes[i]
	for _, p := range probe.Params {
		if p.Default != nil || slices.ContainsFunc(c.Spec.Auth.Params, func(v connectorsv1alpha1.Param) bool { return v.Name == p.Name }) {
			continue
		}
		return cond(t, metav1.ConditionFalse, connectorsv1alpha1.ReasonAuthenticationFailed,
			"spec.auth.params lacks %q, which the auth probe of ConnectorClass %s needs", p.Name, class.Name)
	}
	out := r.runProbe(ctx, probe.Probe.HTTP, newProbeData(c, secret), roots)
	switch {
	case out.err != nil:
		return cond(t, metav1.ConditionFalse, connectorsv1alpha1.ReasonAuthenticationFailed, "auth probe %s: %s", out.target, out.err)
	case out.cel != "":
		if pass, why := r.judge(ctx, out); !pass {
			return cond(t, metav1.ConditionFalse, connectorsv1alpha1.ReasonAuthenticationFailed, "auth probe %s answered %d %s, and %s", out.target, out.status, http.StatusText(out.status), why)
		}
	case out.status == http.StatusUnauthorized || out.status == http.StatusForbidden:
		return cond(t, metav1.ConditionFalse, connectorsv1alpha1.ReasonAuthenticationFailed,
			"auth probe %s answered %d %s: the credential in Secret %s is not accepted by the target", out.target, out.status, http.StatusText(out.status), secretName(c))
	case out.status < 200 || out.status > 299:
		return cond(t, metav1.ConditionFalse, connectorsv1alpha1.ReasonAuthenticationFailed,
			"auth probe %s answered %d %s, want a 2xx status", out.target, out.status, http.StatusText(out.status))
	}
	return ok(t)
}

// judge evaluates the probe's response.cel on its answer; why says what
// failed, for the condition's message.
func (r *ConnectorReconciler) judge(ctx context.Context, out probeOutcome) (pass bool, why string) {
	pass, err := r.cel.eval(ctx, out.cel, out.status, out.header, out.body)
	switch {
	case err != nil:
		return false, fmt.Sprintf("its response.cel %q %s", out.cel, truncate(err.Error(), 200))
	case !pass:
		return false, fmt.Sprintf("its response.cel %q is false", out.cel)
	}
	return true, ""
}

// truncate bounds a message to n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func secretName(c *connectorsv1alpha1.Connector) string {
	if c.Spec.Auth.SecretRef == nil {
		return "(none)"
	}
	return c.Spec.Auth.SecretRef.Name
}

// writeStatus merges the evaluation into the status, records events for
// transitions and writes the status when it changed. It returns Ready.
func (r *ConnectorReconciler) writeStatus(ctx context.Context, c *connectorsv1alpha1.Connector, ev evaluation) (connectorsv1alpha1.Condition, error) {
	now := metav1.NewTime(r.opts.Now())
	status := c.Status.DeepCopy()
	for _, nc := range ev.conditions {
		r.transition(c, status.Conditions, nc)
		connectorsv1alpha1.SetCondition(&status.Conditions, nc, now)
	}
	ready := connectorsv1alpha1.AggregateReady(status.Conditions, connectorsv1alpha1.ConnectorConditionTypes())
	r.transition(c, status.Conditions, ready)
	connectorsv1alpha1.SetCondition(&status.Conditions, ready, now)
	status.ObservedGeneration = c.Generation
	status.Proxy = ev.proxy
	if equality.Semantic.DeepEqual(&c.Status, status) {
		return ready, nil
	}
	c.Status = *status
	if err := r.opts.Client.Status().Update(ctx, c); err != nil {
		return ready, fmt.Errorf("update status of connector %s/%s: %w", c.Namespace, c.Name, err)
	}
	r.logger(ctx).V(1).Info("connector status written", "ready", ready.Status, "reason", ready.Reason)
	return ready, nil
}

// transition records an event when a condition's status changes (or it
// keeps failing with another reason or message).
func (r *ConnectorReconciler) transition(c *connectorsv1alpha1.Connector, old []connectorsv1alpha1.Condition, nc connectorsv1alpha1.Condition) {
	prev := connectorsv1alpha1.FindCondition(old, nc.Type)
	if prev != nil && prev.Status == nc.Status && (nc.Status != metav1.ConditionFalse || (prev.Reason == nc.Reason && prev.Message == nc.Message)) {
		return
	}
	if prev == nil && nc.Status == metav1.ConditionUnknown {
		return
	}
	reason := nc.Reason
	if reason == "" {
		reason = nc.Type
	}
	if nc.Type == connectorsv1alpha1.ConditionCACertReady && nc.Status == metav1.ConditionFalse {
		// The original's event reasons.
		if r, ok := map[string]string{connectorsv1alpha1.ReasonSecretNotFound: "CACertSecretNotFound", connectorsv1alpha1.ReasonInvalidPEM: "InvalidCACert"}[nc.Reason]; ok {
			reason = r
		}
	}
	switch nc.Status {
	case metav1.ConditionFalse:
		r.opts.Recorder.Eventf(c, corev1.EventTypeWarning, reason, "%s is False: %s", nc.Type, nc.Message)
	case metav1.ConditionTrue:
		r.opts.Recorder.Eventf(c, corev1.EventTypeNormal, reason, "%s is True", nc.Type)
	}
}

// logger is the logger of ctx (controller-runtime's, with the request's
// keys), or Options.Logger when ctx carries none.
func (r *ConnectorReconciler) logger(ctx context.Context) logr.Logger {
	if l, err := logr.FromContext(ctx); err == nil {
		return l
	}
	return r.opts.Logger
}
