//go:build unix

package conformance

import (
	"os/exec"
	"syscall"
)

// ownGroup runs the adapter in a process group of its own, so that the harness ends
// whatever it started too (a shell, an interpreter).
func ownGroup(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }

func killGroup(cmd *exec.Cmd) {
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Process.Kill()
}
