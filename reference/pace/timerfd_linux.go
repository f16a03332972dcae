package pace

import (
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

var shared = sync.OnceValue(func() *waker {
	c, err := newTimerfd()
	if err != nil {
		return nil // time.Timer then
	}
	return newWaker(c)
})

// A timerfd is a clock on CLOCK_MONOTONIC, the clock of Go's monotonic time, whose
// alarm is a timerfd read through the runtime's poller (it is non-blocking, so os
// registers it there): a goroutine reading it parks until the timer expires.
type timerfd struct {
	fd   int
	file *os.File
	buf  [8]byte
}

func newTimerfd() (*timerfd, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("timerfd_create", err)
	}
	return &timerfd{fd: fd, file: os.NewFile(uintptr(fd), "timerfd")}, nil
}

func (t *timerfd) now() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(os.NewSyscallError("clock_gettime", err)) // CLOCK_MONOTONIC is always there
	}
	return ts.Nano()
}

func (t *timerfd) set(at int64) error {
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(max(at, 1))} // 0 would disarm it
	return unix.TimerfdSettime(t.fd, unix.TFD_TIMER_ABSTIME, &spec, nil)
}

func (t *timerfd) close() { t.file.Close() }

func (t *timerfd) alarm() bool {
	_, err := t.file.Read(t.buf[:])
	return err == nil
}
