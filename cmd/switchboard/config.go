package main

import (
	"fmt"
	"io"

	"github.com/switchboard-chat/switchboard/internal/config"
)

const configUsage = `usage: switchboard config check FILE

Checks a TOML config file for "switchboard serve" the way serve reads it:
unknown keys, values of the wrong type and bad values are refused, naming
the key. Exits 0 and prints "ok" when the file is good. Starts nothing and
touches nothing but the file.
`

func configCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "check" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprint(stdout, configUsage)
			return exitOK
		}
		fmt.Fprint(stderr, configUsage)
		return exitUsage
	}
	if len(args) != 2 {
		fmt.Fprint(stderr, configUsage)
		return exitUsage
	}
	if _, err := config.Load(args[1]); err != nil {
		fmt.Fprintf(stderr, "switchboard config check: %v\n", err)
		return exitError
	}
	fmt.Fprintln(stdout, "ok")
	return exitOK
}
