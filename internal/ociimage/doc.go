// Package ociimage assembles OCI container images from local files, without
// a Docker daemon, on go-containerregistry (the library ko and crane are
// built on): one layer holding the files, directories and symlinks of a
// Spec, an image config with the entrypoint, environment and user, and a
// tarball that `ctr images import` (and `docker load`) read.
//
// Layers are deterministic: entries sorted, modification times zero, owners
// root unless a file says otherwise, so the same inputs give the same digest.
package ociimage
