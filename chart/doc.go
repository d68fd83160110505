// Package chart embeds the files of the Helm chart that the Go code also
// needs: the generated CRDs (crds/) and the shipped ConnectorClasses
// (classes/), so that the local run and the tests install exactly what the
// chart installs.
package chart
