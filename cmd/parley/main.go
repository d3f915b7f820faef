// Command parley is the Parley server and its administration tool.
//
//	parley serve      run the API server (migrates the database first)
//	parley migrate    apply database migrations and exit
//	parley org ...    create and list organizations, set minutes balances
//	parley key ...    create, list and revoke API keys
//	parley campaign watch ID   follow a campaign's progress through the API
//
// Run `parley help` for the settings; each can be given as an environment
// variable or a flag, and flags win.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "parley:", err)
		os.Exit(1)
	}
}
