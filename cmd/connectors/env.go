package main

import "os"

// environment is every environment variable the binary reads, read once in
// main: the pod's namespace and node (the downward API), the port of a
// serverless platform, and where to serve the profiler.
type environment struct {
	podNamespace string // $POD_NAMESPACE: the install namespace
	nodeName     string // $NODE_NAME: the CSI driver's node
	port         string // $PORT: the listening port (Knative, Cloud Run)
	pprofAddr    string // $CONNECTORS_PPROF_ADDR: serve the Go profiler there (loopback only)
}

func readEnvironment() environment {
	return environment{podNamespace: os.Getenv("POD_NAMESPACE"), nodeName: os.Getenv("NODE_NAME"), port: os.Getenv("PORT"),
		pprofAddr: os.Getenv("CONNECTORS_PPROF_ADDR")}
}

// or returns v, or def when v is empty.
func or(v, def string) string {
	if v != "" {
		return v
	}
	return def
}
