module example.com/gofer-examples/caching

go 1.26.8

require github.com/goferhq/gofer/sdk/go v0.0.0

replace github.com/goferhq/gofer/sdk/go => ../../sdk/go
