//go:build tools

// Package dockerbuild only records the main packages this module builds, so `go mod tidy` keeps their
// requirements: the provider, and the docker-buildx CLI plugin its `exec` mode runs (same buildx version).
package dockerbuild

import (
	_ "github.com/docker/buildx/cmd/buildx"
	_ "github.com/pulumi/pulumi-docker-build/provider/cmd/pulumi-resource-docker-build"
)
