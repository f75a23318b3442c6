package sdk

import (
	"embed"
	"io/fs"
)

// source holds this package's own files. The SDK is not published on a
// module proxy, so `gofer pipeline init` copies it into each new pipeline
// project and points a replace directive at the copy. The files are
// embedded here because sdk/go is a module of its own: go:embed cannot
// reach them from the gofer module, but the gofer module already builds
// this package (go.mod replaces the SDK with ./sdk/go), so every gofer
// binary carries exactly the SDK it was built with. A pipeline program
// that never calls Source does not carry them: the linker drops
// unreferenced variables.
//
//go:embed *.go go.mod extension/*.go
var source embed.FS

// Source returns the SDK's source: go.mod and the .go files of the
// pipeline package (at the root of the returned file system) and of the
// extension package (under extension/), tests included. It exists for
// `gofer pipeline init`; pipeline programs do not need it.
func Source() fs.FS { return source }
