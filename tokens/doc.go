// Package tokens mints, validates, authorizes and revokes the short-lived
// ServiceAccount tokens that workloads present to the gateway (as the proxy
// password) and to the control API. The gateway, the CSI driver and the
// control API all build on it; it imports none of them.
//
// # Minting
//
// A [Minter] asks the API server for a TokenRequest of a pod's
// ServiceAccount, with the audience connectors-proxy, bound to the Pod (name
// and UID) and valid for 30 minutes by default (10 minutes at least, as the
// API server requires).
//
// # Validation
//
// A [Pipeline] implements the one interface consumers use, [Validator]. A
// token goes through these tiers, cheapest first, and each answer is cached
// in the tiers above the one that produced it:
//
//  1. A size guard: tokens over 16 KiB are refused before any parsing.
//  2. The in-process LRU, bounded by entries, keyed by
//     HMAC-SHA256(sharedKey, token) — never the token itself.
//  3. Redis (go-redis UniversalClient: single node, Sentinel or Cluster),
//     same keys under a prefix; the value is the validated identity. Entries
//     live min(MaxTTL, exp − now); rejections live a few seconds. Concurrent
//     lookups of one token collapse into one (singleflight).
//  4. A local JWT check (golang-jwt v5): RS256, ES256 or ES384 only, the
//     cluster's issuer, our audience and exp are required, keys come from the
//     API server's OIDC discovery and are refetched on an unknown key ID at
//     most once per 10 s. A token that fails here never reaches the API
//     server.
//  5. TokenReview with spec.audiences, which is authoritative and also proves
//     that the bound pod still exists. The identity comes from the verified
//     claims; the review must agree with them.
//
// Errors are the package's sentinels (ErrExpired, ErrAudience, …); IsInvalid
// tells a bad token from ErrUnavailable (the API server could not be asked),
// which is never cached: the pipeline never fails open.
//
// # Resilience
//
// When Redis is unreachable the pipeline logs it once, sets the
// connectors_token_redis_up gauge to 0 and keeps serving from the local LRU
// and the JWT check + TokenReview, trying Redis again once per RedisRetry;
// recovery is logged once too. When the API server is unreachable, cached
// unexpired results keep working and new tokens are refused with
// ErrUnavailable. go-redis logs its own dial failures through its global
// logger: the binary's wiring routes it (redis.SetLogger).
//
// # Authorization
//
// An [Authorizer] lets identities of a connector's namespace use it, and
// asks the API server (SubjectAccessReview: get connectors.connectors.alauda.io
// by name) for anyone else, caching allows for 30 s and denies for 5 s: in
// the process and, with AuthorizerOptions.Shared, in the pipeline's Redis
// tier, sealed with the shared key like the token entries, so one replica's
// SubjectAccessReview serves the others.
//
// # Revocation
//
// A [PodWatcher] watches pod metadata and calls [Pipeline.Revoke] for every
// deleted pod: the pod's entries (found through a pod-UID index, locally and
// in Redis) are dropped, the pod is remembered as revoked, and a message on a
// Redis channel makes every other replica ([Pipeline.Start]) drop its local
// entries too — well within 2 s.
//
// # Token API
//
// [API] serves POST /v1/namespaces/{ns}/connectors/{name}/token for the
// control server: a ServiceAccount caller, authenticated with its own token
// and authorized as above, gets a proxy token and the connector's proxy URL.
//
// Types that hold tokens ([Token]) redact themselves in fmt, logr and slog.
package tokens
