module github.com/goferhq/gofer/sdk/go

go 1.24
