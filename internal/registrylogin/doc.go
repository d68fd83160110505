// Package registrylogin is the login of the OCI distribution spec, shared
// by the gateway (which answers a registry's challenge for its clients) and
// the reconciler (which checks a registry credential): go-containerregistry's
// transport pings the registry's /v2/ and, for a Bearer challenge, asks
// the token service of the challenge's realm for a token of the given
// scopes with the user name and password, attaches it to every request to
// the registry and refreshes it when refused; for a Basic challenge it
// sends the credential as Basic.
//
// Two rules on top of the library: a request never leaves in plain HTTP
// for an https registry (the library falls back to http for some hosts),
// and no error carries a body of the registry or its token service (one
// that holds no token is quoted whole by the library, and an answer may
// hold other tokens): only statuses, error codes and transport failures.
package registrylogin
