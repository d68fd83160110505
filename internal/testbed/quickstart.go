package testbed

import "strings"

// QuickstartToken and QuickstartAddress are the seed's placeholders of the
// quick start's step 2: the target cluster's token and its API server.
const (
	QuickstartToken   = "eyJhbGciOiJSUzI1NiIxxxxxxxx"
	QuickstartAddress = "https://192.168.1.100:6443"
)

// quickstartStep2 is the Secret and the Connector of the quick start's step
// 2, exactly as the seed gives them.
const quickstartStep2 = `kind: Secret
apiVersion: v1
metadata:
  name: k8s-secret
type: connectors.cpaas.io/bearer-token
stringData:
  token: ` + QuickstartToken + ` # the target cluster's bearer token
---
apiVersion: connectors.alauda.io/v1alpha1
kind: Connector
metadata:
  name: k8s-connector
spec:
  connectorClassName: k8s
  address: ` + QuickstartAddress + ` # the target apiserver
  auth:
    name: bearerTokenAuth
    secretRef:
      name: k8s-secret
`

// QuickstartManifests returns the quick start's step 2 with only the
// address and the token replaced, as the seed tells its reader to (empty
// keeps the seed's placeholder).
func QuickstartManifests(token, address string) string {
	if token == "" {
		token = QuickstartToken
	}
	if address == "" {
		address = QuickstartAddress
	}
	return strings.NewReplacer(QuickstartToken, token, QuickstartAddress, address).Replace(quickstartStep2)
}
