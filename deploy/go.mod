module github.com/natsotel/reference/deploy

go 1.26.0

require (
	github.com/natsotel/reference/services v0.0.0
)

replace github.com/natsotel/reference/services => ../services
