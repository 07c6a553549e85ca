// Where a virtio-blk queue's file I/O runs (BlkDevice's `io`), and how `auto` chooses.
//
// Inline (`sync`), a request's preadv/pwritev runs on the event loop as its chain is popped,
// and the driver has its answer microseconds after its kick: the least latency for a driver
// that waits for each request. On the threadpool (`threads`), each pop's I/O is one
// FileIoBatch and the queue pops again only when it returns: a driver that keeps several
// requests in flight meanwhile queues more, and gets them answered together. Under TCG, a
// Linux guest's kicks and interrupts cost its single vCPU 10-25 µs each, so there fewer of
// them per request is what makes the guest faster (README: Real guests).

/**
 * `sync`: on the event loop, each request as its chain is popped. `threads`: each pop's I/O
 * as one FileIoBatch on libuv's threadpool, its requests answered together when it returns.
 * `auto`: inline while the driver waits for each request, the threadpool while it trickles
 * requests in with several in flight (AutoIo).
 */
export type BlkIoMode = 'sync' | 'threads' | 'auto'

/**
 * Inline, a request is answered within microseconds, so the device rarely sees two at once
 * even when the driver keeps several in flight: `auto` moves to the threadpool at the first
 * pass that finds more than one. There, the pop after each batch returns tells: a driver
 * waiting for its one request has queued nothing new yet, one with several in flight has.
 * `auto` goes back inline when the share of those pops that found requests (a moving
 * average, weight 1/8) falls below this. Measured with a Linux guest under TCG: about 0.65
 * at queue depth 8, under 0.01 at queue depth 1.
 */
const INLINE_BELOW = 0.15
/** The share `auto` starts from on moving to the threadpool. */
const START = 0.5
/**
 * `auto` stays inline while pops find this many requests or more on average (a moving
 * average, weight 1/8): a driver that queues its requests in bursts (a fast frontend) is
 * waiting for the device by then, and a batch's round trip through the threadpool would
 * only add to its latency. A Linux guest under TCG at queue depth 8 trickles them in: about
 * 1.0-1.15 per pop; the package's load generator at queue depth 8 queues all 8 at once.
 */
const BURST = 4

/** What `auto` has seen of one queue, and its choice. */
export class AutoIo {
  /** The threadpool (true) or inline. */
  #threads = false
  /** Moving average of the pops after a batch that found requests (1) or none (0). */
  #foundAfterBatch = START
  /** Moving average of the requests per pop that found any. */
  #perPop = 1

  /** Whether a pop of `n` requests (n > 0), in round `round` of a pass, goes to the threadpool. */
  threads(n: number, round: number): boolean {
    this.#perPop += (n - this.#perPop) / 8
    if (this.#perPop >= BURST) this.#threads = false
    else if (!this.#threads && (n > 1 || round > 0)) {
      this.#threads = true
      this.#foundAfterBatch = START
    }
    return this.#threads
  }

  /** The pop after a batch returned found `n` requests. */
  afterBatch(n: number): void {
    this.#foundAfterBatch += ((n > 0 ? 1 : 0) - this.#foundAfterBatch) / 8
    if (this.#foundAfterBatch < INLINE_BELOW) this.#threads = false
  }
}
