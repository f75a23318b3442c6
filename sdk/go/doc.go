// Package sdk describes Gofer pipelines in Go.
//
// A pipeline is a DAG of container tasks. The types in this package are the
// exact JSON that `gofer up` registers with the server, and the validation
// here is the same code the server runs, so a pipeline that passes Validate
// locally is accepted remotely.
//
// The package depends on the standard library only, so user pipelines build
// fast and offline.
package sdk
