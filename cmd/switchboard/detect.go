package main

import (
	"bufio"
	"fmt"
	"io"
	"os"

	"github.com/switchboard-chat/switchboard/internal/outage/detector"
)

// detect runs the outage detector offline over a timestamp,value CSV and
// writes NAB's results format (timestamp,value,anomaly_score) to stdout.
func detect(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(stderr, "usage: switchboard detect FILE.csv   (a timestamp,value CSV with a header line; - reads standard input)")
		return exitUsage
	}
	in := os.Stdin
	if args[0] != "-" {
		f, err := os.Open(args[0])
		if err != nil {
			fmt.Fprintf(stderr, "switchboard detect: %v\n", err)
			return exitError
		}
		defer f.Close()
		in = f
	}
	w := bufio.NewWriter(stdout)
	if err := detector.RunCSV(bufio.NewReader(in), w); err != nil {
		fmt.Fprintf(stderr, "switchboard detect: %s: %v\n", args[0], err)
		return exitError
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintf(stderr, "switchboard detect: %v\n", err)
		return exitError
	}
	return exitOK
}
