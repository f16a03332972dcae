// Package pace waits until a point in time, as a time.Timer does, but wakes closer to
// it on Linux.
//
// A Go program whose goroutines all wait sleeps in the runtime's network poller,
// whose timeout is in whole milliseconds: a timer due in 4.3 ms wakes it after 4 ms and
// then again after 1 ms, up to a millisecond late (and often is, on a virtual machine).
// That is noise a fixture agent pacing its chunks, or a load generator sending at fixed
// times, must not add to what it measures. Until arms a timerfd instead, which the same
// poller waits for: the poller then wakes when the timer expires, to within the
// kernel's timer resolution. But the runtime asks its poller only when it has nothing
// to run: while goroutines keep it busy, it is a time.Timer, checked at each switch of
// goroutines, that is on time. Until sets both for the earliest wait, and the first to
// go off ends the waits that are due. One timerfd, one timer and one goroutine serve a
// whole process.
//
// Elsewhere, or when the timerfd cannot be made, Until waits with a time.Timer.
package pace
