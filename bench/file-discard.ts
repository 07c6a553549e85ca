// What a DISCARD costs the virtio-blk example: punching a hole by running util-linux's
// fallocate(1) (what examples/virtio-blk/holes.ts did before virtio-queue/file) against
// virtio-queue/file's punchHoleSync (on the calling thread) and punchHole (libuv's
// threadpool, awaited), interleaved round by round so that load affects all three alike.
// The range is written again (not timed) before each punch, so every punch frees blocks.
// Usage: node --import tsx bench/file-discard.ts [rounds] [dir...]   (default: 200, os.tmpdir() and /dev/shm)
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import { punchHole, punchHoleSync } from '../src/file/index'

const rounds = Number(process.argv[2] ?? 200)
const dirs = process.argv.length > 3 ? process.argv.slice(3) : [os.tmpdir(), '/dev/shm']

const methods: Record<string, (fd: number, offset: number, length: number) => Promise<void> | void> = {
  'fallocate(1) spawn': (fd, offset, length) => {
    const args = [
      '--punch-hole',
      '--offset',
      String(offset),
      '--length',
      String(length),
      `/proc/${process.pid}/fd/${fd}`,
    ]
    const r = spawnSync('fallocate', args, { stdio: 'ignore' })
    if (r.status !== 0) throw new Error(`fallocate(1) failed: ${r.status}`)
  },
  punchHoleSync,
  'await punchHole': punchHole,
}

const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!
const p90 = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length * 0.9)]!

async function main(): Promise<void> {
  console.log(
    `load average before: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  )
  for (const dir of dirs) {
    for (const length of [4096, 1 << 20]) {
      const file = path.join(dir, `vq-discard-bench-${process.pid}`)
      const fd = fs.openSync(file, 'w+')
      fs.unlinkSync(file)
      const data = Buffer.alloc(length, 0x5a)
      const times: Record<string, number[]> = Object.fromEntries(Object.keys(methods).map((m) => [m, []]))
      for (let i = 0; i < rounds; i++) {
        for (const [name, punch] of Object.entries(methods)) {
          fs.writeSync(fd, data, 0, length, 0)
          const t0 = process.hrtime.bigint()
          await punch(fd, 0, length)
          times[name]!.push(Number(process.hrtime.bigint() - t0) / 1000)
        }
      }
      fs.closeSync(fd)
      const fsName = dir === '/dev/shm' ? 'tmpfs' : dir
      for (const [name, t] of Object.entries(times)) {
        console.log(
          `${fsName}, ${length >= 1 << 20 ? `${length >> 20} MiB` : `${length >> 10} KiB`}, ${name}: median ${median(t).toFixed(1)} us, p90 ${p90(t).toFixed(1)} us`,
        )
      }
    }
  }
  console.log(
    `load average after: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  )
}

void main()
