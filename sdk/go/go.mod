module github.com/goferhq/gofer/sdk/go

go 1.26.8
