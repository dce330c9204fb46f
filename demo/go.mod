module github.com/natsotel/reference/demo

go 1.26.0

require (
	github.com/natsotel/reference/natsotel v0.0.0
	github.com/natsotel/reference/services v0.0.0
	github.com/natsotel/reference/loadgen v0.0.0
)

replace github.com/natsotel/reference/natsotel => ../natsotel
replace github.com/natsotel/reference/services => ../services
replace github.com/natsotel/reference/loadgen => ../loadgen
