package main

import "os"

// environment is every environment variable the binary reads, read once in
// main: the pod's namespace and node (the downward API), and the port of a
// serverless platform.
type environment struct {
	podNamespace string // $POD_NAMESPACE: the install namespace
	nodeName     string // $NODE_NAME: the CSI driver's node
	port         string // $PORT: the listening port (Knative, Cloud Run)
}

func readEnvironment() environment {
	return environment{podNamespace: os.Getenv("POD_NAMESPACE"), nodeName: os.Getenv("NODE_NAME"), port: os.Getenv("PORT")}
}

// or returns v, or def when v is empty.
func or(v, def string) string {
	if v != "" {
		return v
	}
	return def
}
