module github.com/moat-gateway/moat/sdk

go 1.26.0
