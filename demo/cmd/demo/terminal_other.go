//go:build !unix

package main

// takeTerminal does nothing here: process groups and a terminal's foreground group are
// Unix job control.
func takeTerminal() (release func()) { return func() {} }
