// `npm run vhost-user-blk -- --heap-stats SECONDS`: what the disk allocates, measured from
// inside its own process. Every SECONDS (and on demand) it forces a full garbage collection
// and prints one line `heap-stats {json}` on stdout with a HeapSample: counters since the
// reporter started, so that whoever reads two lines gets the figures between them.
//
// Bytes allocated are exact for V8's heap, without sampling: V8's GC profiler (v8.GCProfiler)
// records the heap's used size before and after every collection, so between two samples
//   allocated = usedAfterGc(now) - usedAfterGc(before) + sum over collections of (before - after)
// (what is alive now and was not before, plus what was collected). Buffers' backing stores,
// allocated outside V8's heap, are not in it (externalMemory and rss show them). Each sample
// itself counts 20-330 KB in this measure (the GC profiler's record, this line, and what V8
// allocates around a forced collection; measured on Node 20 and 26): under 1 B per request when
// samples are 1 s and 100 k+ requests apart.
import * as v8 from 'node:v8'
import * as vm from 'node:vm'

/** One `heap-stats` line. Counters run from the reporter's start. */
export interface HeapSample {
  /** Why the line was written: the interval, or a frontend's `connect`/`disconnect`. */
  event: string
  /** Milliseconds since the reporter started. */
  ms: number
  /** Requests the device completed (its stats). */
  requests: number
  /** V8's used heap right after a forced full collection, in bytes. */
  heapUsedAfterGc: number
  /** Off-heap memory V8 knows of (Buffers' backing stores, ...), in bytes. */
  externalMemory: number
  /** The process's resident set, in bytes. */
  rss: number
  /** Bytes allocated in V8's heap (see the head of the file). */
  allocatedBytes: number
  /** Young-generation collections (Scavenge; Minor Mark-Sweep/Compact where V8 uses them). */
  scavenges: number
  /** Full collections V8 started itself (the forced ones are not counted). */
  markCompacts: number
  /** Full collections this reporter forced (one per sample). */
  forcedGcs: number
}

/** The `gc()` of --expose-gc, set after startup when the process was not started with it. */
function collector(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc
  if (typeof exposed === 'function') return exposed
  v8.setFlagsFromString('--expose-gc')
  return vm.runInNewContext('gc') as () => void
}

const MINOR = new Set(['Scavenge', 'MinorMarkSweep', 'MinorMarkCompact'])

/** Heap figures of this process, sampled with a forced collection (see the head of the file). */
export class HeapStats {
  readonly #requests: () => number
  readonly #gc = collector()
  readonly #start = Date.now()
  #profiler = new v8.GCProfiler()
  #baseline: number
  #allocated = 0
  #scavenges = 0
  #markCompacts = 0
  #forced = 0
  #timer: NodeJS.Timeout | null = null

  /** `requests()` tells how many requests the device has completed so far. */
  constructor(requests: () => number) {
    this.#requests = requests
    this.#gc()
    this.#profiler.start()
    this.#baseline = v8.getHeapStatistics().used_heap_size
  }

  /** Forces a full collection and returns the counters so far. */
  sample(event: string): HeapSample {
    this.#gc()
    this.#forced++
    const { statistics } = this.#profiler.stop()
    this.#profiler = new v8.GCProfiler()
    this.#profiler.start()
    let majors = 0
    for (const s of statistics) {
      this.#allocated += s.beforeGC.heapStatistics.usedHeapSize - s.afterGC.heapStatistics.usedHeapSize
      if (MINOR.has(s.gcType)) this.#scavenges++
      else if (s.gcType === 'MarkSweepCompact') majors++
    }
    // Our own gc() is one of the full collections of this interval.
    this.#markCompacts += Math.max(0, majors - 1)
    const heap = v8.getHeapStatistics()
    this.#allocated += heap.used_heap_size - this.#baseline
    this.#baseline = heap.used_heap_size
    return {
      event,
      ms: Date.now() - this.#start,
      requests: this.#requests(),
      heapUsedAfterGc: heap.used_heap_size,
      externalMemory: heap.external_memory,
      rss: process.memoryUsage.rss(),
      allocatedBytes: this.#allocated,
      scavenges: this.#scavenges,
      markCompacts: this.#markCompacts,
      forcedGcs: this.#forced,
    }
  }

  /** Writes a sample line now, for `event`. */
  report(event: string, write: (line: string) => void): void {
    write(`heap-stats ${JSON.stringify(this.sample(event))}`)
  }

  /** Writes a sample line every `ms` milliseconds (the timer does not keep the process alive). */
  every(ms: number, write: (line: string) => void): void {
    this.stop()
    this.#timer = setInterval(() => this.report('interval', write), ms)
    this.#timer.unref()
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
  }
}
