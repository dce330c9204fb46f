module github.com/natsotel/reference/services

go 1.26.0

require (
	github.com/natsotel/reference/natsotel v0.0.0
)

replace github.com/natsotel/reference/natsotel => ../natsotel
