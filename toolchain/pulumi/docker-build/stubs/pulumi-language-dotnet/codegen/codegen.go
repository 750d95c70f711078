// Package codegen holds the C# language options that a provider's schema names; JSON keys follow the published
// schema format so the schema the provider reports stays the same.
package codegen

type CSharpPackageInfo struct {
	RespectSchemaVersion bool              `json:"respectSchemaVersion,omitempty"`
	PackageReferences    map[string]string `json:"packageReferences,omitempty"`
}
