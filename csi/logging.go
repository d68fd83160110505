package csi

import (
	"context"
	"time"

	csipb "github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/go-logr/logr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// redactedValue replaces secret values in logs.
const redactedValue = "[redacted]"

// safeContextKeys are the volume context keys whose values are logged; the
// values of all other keys (the kubelet's tokens, unknown attributes) are
// redacted.
var safeContextKeys = map[string]bool{
	KeyPodName: true, KeyPodNamespace: true, KeyPodUID: true, KeyServiceAccountName: true, KeyEphemeral: true,
	AttrConnectorName: true, AttrConnectorNamespace: true, AttrConnectors: true, AttrConfigurationNames: true, AttrTokenExpiration: true,
}

// LoggingInterceptor logs every CSI call (method, volume, target, the
// volume context with secret values redacted, the keys of the secrets,
// result code and duration) at V(1), and failures at V(0). Never a token,
// never rendered content: error messages are built without either.
func LoggingInterceptor(log logr.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		kv := []any{"method", info.FullMethod, "code", status.Code(err).String(), "duration", time.Since(start)}
		kv = append(kv, requestValues(req)...)
		if err != nil {
			log.Info("CSI call failed", append(kv, "message", status.Convert(err).Message())...)
		} else {
			log.V(1).Info("CSI call", kv...)
		}
		return resp, err
	}
}

// requestValues are the loggable fields of a request.
func requestValues(req any) []any {
	switch r := req.(type) {
	case *csipb.NodePublishVolumeRequest:
		return []any{"volumeID", r.GetVolumeId(), "target", r.GetTargetPath(), "readOnly", r.GetReadonly(),
			"volumeContext", redactContext(r.GetVolumeContext()), "secrets", sortedKeys(r.GetSecrets())}
	case *csipb.NodeUnpublishVolumeRequest:
		return []any{"volumeID", r.GetVolumeId(), "target", r.GetTargetPath()}
	default:
		return nil
	}
}

func redactContext(vc map[string]string) map[string]string {
	out := make(map[string]string, len(vc))
	for k, v := range vc {
		if safeContextKeys[k] {
			out[k] = v
		} else {
			out[k] = redactedValue
		}
	}
	return out
}
