package main

import (
	"sync"

	"github.com/agentws/agentws/schemas"
)

// batchSize is how many records a worker takes at a time.
const batchSize = 256

// A pipeline validates records on several goroutines and hands the results to the
// reporter in input order, with at most 2 batches per worker in flight.
type pipeline struct {
	c       *config
	v       *schemas.Validator
	rep     *reporter
	cur     *batch
	next    int
	jobs    chan *batch
	done    chan *batch
	slots   chan struct{}
	workers sync.WaitGroup
	collect sync.WaitGroup
}

type batch struct {
	seq     int
	records []record
	errs    []error
}

func newPipeline(c *config, v *schemas.Validator, rep *reporter) *pipeline {
	p := &pipeline{
		c: c, v: v, rep: rep,
		jobs:  make(chan *batch),
		done:  make(chan *batch),
		slots: make(chan struct{}, 2*c.workers),
	}
	for range c.workers {
		p.workers.Go(p.work)
	}
	p.collect.Go(p.report)
	return p
}

// add queues a record for validation.
func (p *pipeline) add(r record) {
	if p.cur == nil {
		p.cur = &batch{seq: p.next, records: make([]record, 0, batchSize)}
		p.next++
	}
	p.cur.records = append(p.cur.records, r)
	if len(p.cur.records) == batchSize {
		p.flush()
	}
}

func (p *pipeline) flush() {
	if p.cur == nil {
		return
	}
	p.slots <- struct{}{}
	p.jobs <- p.cur
	p.cur = nil
}

// close validates what is left and waits until every result is reported.
func (p *pipeline) close() {
	p.flush()
	close(p.jobs)
	p.workers.Wait()
	close(p.done)
	p.collect.Wait()
}

func (p *pipeline) work() {
	for b := range p.jobs {
		b.errs = make([]error, len(b.records))
		for i, r := range b.records {
			b.errs[i] = p.validate(r)
		}
		b.records = trimData(b.records)
		p.done <- b
	}
}

func (p *pipeline) validate(r record) error {
	if r.size > 0 {
		return &schemas.ValidationError{Problems: []schemas.Problem{{
			Message: sizeMessage(r.size, p.c.maxBytes),
			Code:    "too_large",
		}}}
	}
	if p.c.schema != "" {
		return p.v.Validate(p.c.schema, r.data)
	}
	return p.v.ValidateMessage(p.c.direction, r.data)
}

// trimData drops the messages' bytes, which the reporter does not need.
func trimData(rs []record) []record {
	for i := range rs {
		rs[i].data = nil
	}
	return rs
}

// report hands finished batches to the reporter in input order.
func (p *pipeline) report() {
	pending := map[int]*batch{}
	next := 0
	for b := range p.done {
		pending[b.seq] = b
		for b, ok := pending[next]; ok; b, ok = pending[next] {
			delete(pending, next)
			for i, r := range b.records {
				p.rep.result(r, b.errs[i])
			}
			<-p.slots
			next++
		}
	}
}
