package main

import (
	"context"
	"fmt"
	"io"
)

// bench is replaced by the load generator (issue 5).
func bench(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "switchboard bench: not built yet")
	return exitError
}
