// Command pause is the sandbox ("pause") container of the local node's pods: containerd's CRI
// starts it first in every pod to hold the pod's namespaces, and it is PID 1 of the pod when the
// pod shares its process namespace.
//
// It does three things and nothing else:
//   - SIGINT and SIGTERM end it with status 0: a stopped pod is not a failure.
//   - SIGCHLD makes it reap every exited child. As PID 1 it inherits the orphans of the pod's
//     processes, and a zombie left unreaped would hold its PID forever.
//   - Every other signal is received and dropped. Left alone, the Go runtime would terminate the
//     program on, say, SIGHUP or SIGQUIT, which the kernel's "PID 1 ignores unhandled signals"
//     rule no longer prevents once a handler is installed.
//
// Built by `cargo xtask cluster images` with CGO_ENABLED=0, so the image needs no libraries.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 {
		// An image's entrypoint gets no arguments from the CRI; anything else is a mistake.
		fmt.Fprintf(os.Stderr, "pause takes no arguments, got %q\n", os.Args[1:])
		os.Exit(2)
	}
	signals := make(chan os.Signal, 16)
	// No signal list: every catchable signal is delivered to the channel instead of acting.
	signal.Notify(signals)
	for sig := range signals {
		switch sig {
		case syscall.SIGINT, syscall.SIGTERM:
			os.Exit(0)
		case syscall.SIGCHLD:
			reap()
		}
	}
}

// reap collects every child that has exited. Signals coalesce, so one SIGCHLD may stand for
// several exits: it loops until no exited child is left.
func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		// 0: children remain but none has exited; ECHILD (pid -1): no children at all.
		if pid <= 0 || err != nil {
			return
		}
	}
}
