//go:build tools

// Package cli only records the main package this module builds, so `go mod tidy` keeps its requirements.
package cli

import _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
