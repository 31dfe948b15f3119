// Package linger gathers work items from a channel into batches: what is
// queued now and, when the caller asks for it, what arrives within a short
// wait. The registry's store groups writes under one fsync with it, and
// its signature checker groups signatures under one batch verification.
package linger

import "time"

// Fill appends to batch the items ch holds now, up to max in all. When
// wait is positive and batch then has fewer than enough items, it waits up
// to wait for more, until batch has enough, and takes what is queued once
// more. closed reports that ch was closed. timer belongs to the caller,
// stopped, and is reused from call to call.
func Fill[T any](ch <-chan T, batch []T, max, enough int, wait time.Duration, timer *time.Timer) (_ []T, closed bool) {
	batch, closed = drain(ch, batch, max)
	if closed || wait <= 0 || len(batch) >= enough {
		return batch, closed
	}
	timer.Reset(wait)
	defer timer.Stop()
	for len(batch) < min(enough, max) {
		select {
		case v, ok := <-ch:
			if !ok {
				return batch, true
			}
			batch = append(batch, v)
		case <-timer.C:
			return drain(ch, batch, max)
		}
	}
	return drain(ch, batch, max)
}

// drain appends what ch holds now, up to max items in batch.
func drain[T any](ch <-chan T, batch []T, max int) ([]T, bool) {
	for len(batch) < max {
		select {
		case v, ok := <-ch:
			if !ok {
				return batch, true
			}
			batch = append(batch, v)
		default:
			return batch, false
		}
	}
	return batch, false
}
