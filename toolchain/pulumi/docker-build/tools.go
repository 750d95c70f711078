//go:build tools

// Package dockerbuild only records the main package this module builds, so `go mod tidy` keeps its requirements.
package dockerbuild

import _ "github.com/pulumi/pulumi-docker-build/provider/cmd/pulumi-resource-docker-build"
