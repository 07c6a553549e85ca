// examples/virtio-blk/heap-stats.ts, what `npm run vhost-user-blk -- --heap-stats S` prints:
// the bytes it says were allocated are the bytes allocated, collections are counted by kind,
// and a retained allocation shows in the heap after GC.
import test from 'ava'

import { HeapStats } from '../examples/virtio-blk/heap-stats'

test('HeapStats: counts the bytes allocated, the scavenges they caused, and what stays alive', (t) => {
  let requests = 0
  const h = new HeapStats(() => requests)
  const a = h.sample('start')
  // 200 k arrays of 16 elements: at least 16 * 8 bytes of elements each, all garbage at once.
  const sink: unknown[] = []
  for (let i = 0; i < 200_000; i++) {
    const x = new Array(16).fill(i)
    sink[i & 7] = x
    requests++
  }
  const b = h.sample('end')
  t.is(b.event, 'end')
  t.is(b.requests - a.requests, 200_000)
  const bytes = b.allocatedBytes - a.allocatedBytes
  t.true(bytes >= 200_000 * 16 * 8, `${bytes} B allocated`)
  t.true(bytes < 200_000 * 512, `${bytes} B allocated`)
  t.true(b.scavenges > a.scavenges, 'the garbage caused scavenges')
  t.is(b.forcedGcs - a.forcedGcs, 1)
  // 7 MB kept alive shows in the heap after GC; nothing allocated shows as (almost) nothing.
  const kept = Array.from({ length: 100_000 }, (_, i) => [i, i + 1, i + 2, i + 3, i + 4, i + 5, i + 6, i + 7, i])
  const c = h.sample('kept')
  t.true(c.heapUsedAfterGc - b.heapUsedAfterGc > 100_000 * 9 * 8, 'the retained arrays are in the heap after GC')
  const d = h.sample('idle')
  // A sample's own cost (the GC profiler's record, V8's work around a forced collection):
  // 20-330 KB measured here, against the 25+ MB above.
  t.true(d.allocatedBytes - c.allocatedBytes < 1 << 20, `${d.allocatedBytes - c.allocatedBytes} B between two samples`)
  t.is(d.scavenges, c.scavenges)
  t.true(kept.length > 0 && sink.length > 0 && d.rss > 0)
})
