// virtio-queue/file: fallocate(2) on open files. Holes really punched (st_blocks drop, the
// range reads as zeros, the size and the bytes around it unchanged), ranges zeroed by each
// method, every failure a SystemError shaped as Node's fs errors, and arguments checked natively against
// hostile values, in both the Promise and the synchronous forms.
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import { Worker } from 'node:worker_threads'
import test, { type ExecutionContext } from 'ava'

import { SystemError, punchHole, punchHoleSync, zeroRange, zeroRangeSync, type ZeroRangeMethod } from '../file'
import { SystemError as MainSystemError, VirtioQueueError } from '..'
import { blocks, filledFile, mountUnavailable, readAt, withMount } from './helpers/scratch-fs'

const KiB = 1024
const MiB = 1024 * KiB
const { errno } = os.constants
// Serial: a closed fd's number must not be reused by another test's file meanwhile.
const onLinux = process.platform === 'linux' ? test.serial : test.skip
const withMounts = mountUnavailable === null && process.platform === 'linux' ? test.serial : test.skip
if (mountUnavailable !== null)
  console.log(`file.spec: the tests that mount a file system are skipped: ${mountUnavailable}`)

type Offset = number | bigint
/** Both forms of each operation, the synchronous one wrapped to look like the other. */
const forms = [
  { name: 'Promise', punch: punchHole, zero: zeroRange },
  {
    name: 'sync',
    punch: async (fd: number, o: Offset, l: Offset) => punchHoleSync(fd, o, l),
    zero: async (fd: number, o: Offset, l: Offset) => zeroRangeSync(fd, o, l),
  },
] as const

/** Where files live on disk (the test's tmpdir) and in memory (tmpfs). */
const places = [
  { name: 'disk', dir: os.tmpdir() },
  { name: 'tmpfs', dir: '/dev/shm' },
].filter((p) => fs.existsSync(p.dir))

for (const form of forms) {
  for (const place of places) {
    onLinux(
      `${form.name}: punchHole on ${place.name} frees the blocks; the range reads as zeros, the rest and the size are unchanged`,
      async (t) => {
        const fd = filledFile(place.dir, 4 * MiB)
        try {
          const before = blocks(fd)
          t.is(await form.punch(fd, MiB, 2n * BigInt(MiB)), undefined)
          const after = blocks(fd)
          t.true(after <= before - (2 * MiB) / 512, `st_blocks ${before} -> ${after}`)
          t.is(fs.fstatSync(fd).size, 4 * MiB, 'KEEP_SIZE')
          t.true(readAt(fd, MiB, 2 * MiB).equals(Buffer.alloc(2 * MiB)))
          t.true(readAt(fd, 0, MiB).equals(Buffer.alloc(MiB, 0x5a)))
          t.true(readAt(fd, 3 * MiB, MiB).equals(Buffer.alloc(MiB, 0x5a)))
          // Past the end: nothing to free, the size stays.
          await form.punch(fd, 8 * MiB, 4096)
          t.is(fs.fstatSync(fd).size, 4 * MiB)
        } finally {
          fs.closeSync(fd)
        }
      },
    )

    onLinux(`${form.name}: zeroRange on ${place.name} zeroes the range and keeps it allocated`, async (t) => {
      const fd = filledFile(place.dir, MiB)
      try {
        const before = blocks(fd)
        const method = await form.zero(fd, 4096, 64 * KiB)
        // ext4 and xfs have ZERO_RANGE; tmpfs has not, so it punches and allocates again.
        const expected: ZeroRangeMethod = place.name === 'tmpfs' ? 'punch-hole-allocate' : 'zero-range'
        // A disk's file system may lack it too (the fallback then runs there).
        if (place.name === 'tmpfs') t.is(method, expected)
        else t.true(method === expected || method === 'punch-hole-allocate', method)
        t.is(blocks(fd), before, 'still allocated')
        t.is(fs.fstatSync(fd).size, MiB)
        t.true(readAt(fd, 4096, 64 * KiB).equals(Buffer.alloc(64 * KiB)))
        t.true(readAt(fd, 0, 4096).equals(Buffer.alloc(4096, 0x5a)))
        t.true(readAt(fd, 4096 + 64 * KiB, 4096).equals(Buffer.alloc(4096, 0x5a)))
      } finally {
        fs.closeSync(fd)
      }
    })
  }

  onLinux(
    `${form.name}: a closed fd, a read-only fd, a pipe and a character device fail with EBADF, ESPIPE, ENODEV`,
    async (t) => {
      const fd = filledFile(os.tmpdir(), 4096)
      fs.closeSync(fd)
      await failsWith(t, form.punch(fd, 0, 4096), 'EBADF', 'fallocate', /^EBADF: bad file descriptor, .*PUNCH_HOLE/)
      await failsWith(t, form.zero(fd, 0, 4096), 'EBADF', 'fallocate', /^EBADF: .*ZERO_RANGE/)
      const ro = fs.openSync(__filename, 'r')
      try {
        await failsWith(t, form.punch(ro, 0, 4096), 'EBADF', 'fallocate', /of 4096 bytes at offset 0 of fd \d+$/)
      } finally {
        fs.closeSync(ro)
      }
      const [r, w] = pipe()
      try {
        await failsWith(t, form.punch(w, 0, 1), 'ESPIPE', 'fallocate', /^ESPIPE: /)
        await failsWith(t, form.zero(w, 0, 1), 'ESPIPE', 'fallocate', /^ESPIPE: /)
      } finally {
        fs.closeSync(r)
        fs.closeSync(w)
      }
      const dev = fs.openSync('/dev/null', 'w')
      try {
        await failsWith(t, form.zero(dev, 0, 4096), 'ENODEV', 'fallocate', /^ENODEV: /)
      } finally {
        fs.closeSync(dev)
      }
    },
  )

  onLinux(
    `${form.name}: a range past the file system's largest file fails with EFBIG (bigint offsets are exact)`,
    async (t) => {
      const fd = filledFile('/dev/shm', 4096)
      try {
        // tmpfs files can reach 2^63 - 1: the last byte there can be punched (no blocks).
        await form.punch(fd, 2n ** 63n - 2n, 1n)
        t.is(fs.fstatSync(fd).size, 4096)
      } finally {
        fs.closeSync(fd)
      }
      const disk = filledFile(os.tmpdir(), 4096)
      try {
        // ext4's limit is 16 TiB (xfs's 8 EiB, where this punches nothing).
        const r = await form.punch(disk, 2n ** 62n, 4096).then(
          () => null,
          (e: unknown) => e,
        )
        if (r !== null) {
          t.true(r instanceof SystemError, String(r))
          t.is((r as SystemError).code, 'EFBIG')
          t.is((r as SystemError).errno, -errno.EFBIG)
          t.regex((r as SystemError).message, /of 4096 bytes at offset 4611686018427387904 of fd/)
        }
      } finally {
        fs.closeSync(disk)
      }
    },
  )

  withMounts(
    `${form.name}: a file system without fallocate: punchHole fails with EOPNOTSUPP, zeroRange writes zeros`,
    async (t) => {
      await withMount('ramfs', '', async (dir) => {
        const fd = filledFile(dir, 256 * KiB)
        try {
          await failsWith(
            t,
            form.punch(fd, 0, 4096),
            'EOPNOTSUPP',
            'fallocate',
            /^EOPNOTSUPP: operation not supported by the file system, fallocate\(FALLOC_FL_PUNCH_HOLE/,
          )
          t.true(readAt(fd, 0, 4096).equals(Buffer.alloc(4096, 0x5a)), 'nothing changed')
          t.is(await form.zero(fd, 4096, 3 * 64 * KiB + 512), 'write')
          t.true(readAt(fd, 4096, 3 * 64 * KiB + 512).equals(Buffer.alloc(3 * 64 * KiB + 512)))
          t.true(readAt(fd, 0, 4096).equals(Buffer.alloc(4096, 0x5a)))
          t.true(readAt(fd, 4096 + 3 * 64 * KiB + 512, 1024).equals(Buffer.alloc(1024, 0x5a)))
        } finally {
          fs.closeSync(fd)
        }
      })
    },
  )

  withMounts(
    `${form.name}: zeroRange's write fallback refuses an O_APPEND fd (pwrite would append the zeros, not zero the range)`,
    async (t) => {
      await withMount('ramfs', '', async (dir) => {
        const fd = filledFile(dir, 64 * KiB)
        const appending = fs.openSync(`/proc/self/fd/${fd}`, 'a+')
        try {
          await failsWith(
            t,
            form.zero(appending, 4096, 4096),
            'EBADF',
            'pwrite',
            /^EBADF: bad file descriptor, pwrite of zeros of 4096 bytes at offset 4096 of fd \d+/,
          )
          t.is(fs.fstatSync(fd).size, 64 * KiB, 'nothing appended')
          t.true(readAt(fd, 0, 64 * KiB).equals(Buffer.alloc(64 * KiB, 0x5a)), 'nothing changed')
        } finally {
          fs.closeSync(appending)
          fs.closeSync(fd)
        }
      })
    },
  )

  withMounts(`${form.name}: a full file system: zeroRange fails with ENOSPC where it must allocate`, async (t) => {
    await withMount('tmpfs', 'size=128k', async (dir) => {
      const fd = fs.openSync(`${dir}/f`, 'w+')
      try {
        await failsWith(t, form.zero(fd, 0, 4 * MiB), 'ENOSPC', 'fallocate', /^ENOSPC: .*KEEP_SIZE\) \(allocating/)
        t.is(fs.fstatSync(fd).size, 0, 'KEEP_SIZE: the size never changed')
        await form.punch(fd, 0, 4 * MiB) // deallocating needs no space
      } finally {
        fs.closeSync(fd)
      }
    })
  })
}

/** Arguments the native side must refuse, each with the error it gives (nothing runs). */
function hostileArguments() {
  let conversions = 0
  const lying = {
    valueOf() {
      conversions++
      return 0
    },
    [Symbol.toPrimitive]() {
      conversions++
      return 0
    },
  }
  const proxy = new Proxy(Object(4096) as object, {
    get() {
      conversions++
      return () => 4096
    },
    getPrototypeOf() {
      conversions++
      return Number.prototype
    },
  })
  const type = { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' }
  const range = { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' }
  const cases: [string, unknown, unknown, unknown, { name: string; code: string }, RegExp][] = [
    ['fd a string', '3', 0, 4096, type, /"fd" argument must be of type number/],
    ['fd a bigint', 3n, 0, 4096, type, /"fd"/],
    ['fd an object with valueOf', lying, 0, 4096, type, /"fd"/],
    ['fd -1', -1, 0, 4096, range, /"fd".*from 0 to 2147483647; received -1/],
    ['fd 2^31', 2 ** 31, 0, 4096, range, /"fd"/],
    ['fd 1.5', 1.5, 0, 4096, range, /"fd"/],
    ['fd NaN', Number.NaN, 0, 4096, range, /"fd"/],
    ['offset an object with valueOf', 0, lying, 4096, type, /"offset" argument must be of type number or bigint/],
    ['offset a Proxy', 0, proxy, 4096, type, /"offset"/],
    ['offset a boxed number', 0, Object(0), 4096, type, /"offset"/],
    ['offset a string', 0, '0', 4096, type, /"offset"/],
    ['offset -1', 0, -1, 4096, range, /"offset".*received -1/],
    ['offset -1n', 0, -1n, 4096, range, /"offset".*from 0n to 9223372036854775807n/],
    ['offset 2^63n', 0, 2n ** 63n, 1, range, /"offset"/],
    ['offset 2^64n', 0, 2n ** 64n, 1, range, /"offset"/],
    ['offset 2^53 (not safe)', 0, 2 ** 53, 1, range, /"offset"/],
    ['offset Infinity', 0, Number.POSITIVE_INFINITY, 1, range, /"offset"/],
    ['offset 0.5', 0, 0.5, 1, range, /"offset"/],
    ['length a Proxy', 0, 0, proxy, type, /"length"/],
    ['length undefined', 0, 0, undefined, type, /"length"/],
    ['length 0', 0, 0, 0, range, /"length".*from 1 to/],
    ['length 0n', 0, 0, 0n, range, /"length"/],
    ['length -4096n', 0, 0, -4096n, range, /"length"/],
    ['offset + length past 2^63 - 1', 0, 2n ** 63n - 1n, 1, range, /"length".*from 1 to 2 \*\* 63 - 1 - offset \(0\)/],
    ['offset + length past 2^63 - 1 (both large)', 0, 2n ** 62n, 2n ** 62n, range, /"length"/],
  ]
  return { cases, conversions: () => conversions }
}

for (const form of forms) {
  onLinux(
    `${form.name}: hostile arguments are refused with TypeError / RangeError, no conversion, nothing done`,
    async (t) => {
      const fd = filledFile(os.tmpdir(), 8192)
      try {
        const { cases, conversions } = hostileArguments()
        for (const [what, f, offset, length, expected, message] of cases) {
          const args = [f === 3 ? fd : f, offset, length] as [number, Offset, Offset]
          for (const op of [form.punch, form.zero]) {
            const e = await op(...args).then(
              () => null,
              (x: unknown) => x as Error & { code?: string },
            )
            t.truthy(e, `${what}: refused`)
            t.is(e?.name, expected.name, what)
            t.is(e?.code, expected.code, what)
            t.regex(e?.message ?? '', message, what)
          }
        }
        t.is(conversions(), 0, 'no valueOf, toPrimitive or Proxy trap ran')
        t.true(readAt(fd, 0, 8192).equals(Buffer.alloc(8192, 0x5a)), 'the file is untouched')
      } finally {
        fs.closeSync(fd)
      }
    },
  )
}

onLinux('the Promise forms reject (never throw synchronously) and the sync forms throw', (t) => {
  const promises: Promise<unknown>[] = []
  t.notThrows(() => promises.push(punchHole(-1, 0, 1)))
  t.notThrows(() => promises.push(zeroRange(0, 0, 0)))
  t.throws(() => punchHoleSync(-1, 0, 1), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => zeroRangeSync(0, 0, 0), { code: 'ERR_OUT_OF_RANGE' })
  return Promise.all(promises.map((p) => t.throwsAsync(p, { code: 'ERR_OUT_OF_RANGE' })))
})

onLinux('a Promise form runs off the event loop: timers fire while a large punch is under way', async (t) => {
  const fd = filledFile('/dev/shm', 64 * MiB)
  try {
    let ticks = 0
    const timer = setInterval(() => ticks++, 0)
    const started = process.hrtime.bigint()
    await Promise.all([punchHole(fd, 0, 32 * MiB), punchHole(fd, 32 * MiB, 32 * MiB)])
    clearInterval(timer)
    const ms = Number(process.hrtime.bigint() - started) / 1e6
    t.log(`punching 64 MiB of tmpfs in two calls took ${ms.toFixed(1)} ms; the loop turned ${ticks} times meanwhile`)
    // A punch that blocked the loop would leave the 0 ms interval no turn at all.
    t.true(ticks > 0 || ms < 2, `${ticks} turns in ${ms} ms`)
    t.is(blocks(fd), 0)
  } finally {
    fs.closeSync(fd)
  }
})

onLinux(
  'workers that end (exit, terminate, or just finish) with punches still on the threadpool: no crash, no hang',
  async (t) => {
    const fd = filledFile('/dev/shm', 16 * MiB)
    try {
      const code = `
      const { punchHole } = require(${JSON.stringify(require.resolve('../file'))})
      const { parentPort, workerData } = require('node:worker_threads')
      for (let i = 0; i < 4; i++) void punchHole(workerData.fd, i * 4 * ${MiB}, 4 * ${MiB}).catch(() => {})
      if (workerData.mode === 'exit') process.exit(0)
      // Kept alive (a timer) so that only terminate() ends it.
      if (workerData.mode === 'post') { setInterval(() => {}, 1000); parentPort.postMessage('started') }
    `
      const modes = ['exit', 'post', 'finish', 'exit', 'post', 'finish']
      const codes = await Promise.all(
        modes.map(
          (mode) =>
            new Promise<number>((resolve, reject) => {
              const w = new Worker(code, { eval: true, workerData: { fd, mode } })
              w.on('message', () => void w.terminate())
              w.on('error', reject)
              w.on('exit', resolve)
            }),
        ),
      )
      t.deepEqual(codes, [0, 1, 0, 0, 1, 0], 'exit(0), terminated (1), finished (0)')
      await punchHole(fd, 0, 16 * MiB) // the main thread's threadpool work still runs
      t.is(blocks(fd), 0)
    } finally {
      fs.closeSync(fd)
    }
  },
)

onLinux("SystemError: a VirtioQueueError shaped as Node's fs errors (code, negative errno, syscall)", async (t) => {
  const e = await punchHole(2 ** 31 - 1, 0, 1).catch((x: unknown) => x)
  t.is(SystemError, MainSystemError, 'one class, from both entries')
  t.true(e instanceof SystemError)
  t.true(e instanceof VirtioQueueError)
  t.true(e instanceof Error)
  const f = e as SystemError
  t.is(f.name, 'SystemError')
  t.is(f.code, 'EBADF')
  t.is(f.errno, -errno.EBADF)
  t.is(f.syscall, 'fallocate')
  t.is(
    f.message,
    'EBADF: bad file descriptor, fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) of 1 bytes at offset 0 of fd 2147483647',
  )
  // What Node's own fs errors carry for the same errno.
  const node = t.throws(() => fs.readSync(2 ** 31 - 1, Buffer.alloc(1))) as NodeJS.ErrnoException
  t.is(node.code, f.code)
  t.is(node.errno, f.errno)
})

onLinux(
  'a Rust panic (testing build: op 2) never reaches Node: Panic thrown, or the Promise resolves to the panic outcome',
  async (t) => {
    const { native } = require('../lib/native') as {
      native: { fileFallocate(fd: number, o: number, l: number, op: number, async: boolean): number | Promise<number> }
    }
    t.throws(() => native.fileFallocate(0, 0, 1, 2, false), { instanceOf: VirtioQueueError, code: 'Panic' })
    // The threadpool task panicked: the outcome -1, which src/file turns into Panic.
    t.is(await native.fileFallocate(0, 0, 1, 2, true), -1)
    t.throws(() => native.fileFallocate(0, 0, 1, 3, false), { code: 'ERR_OUT_OF_RANGE' })
    // The process goes on: the next call works.
    const fd = filledFile(os.tmpdir(), 4096)
    try {
      await punchHole(fd, 0, 4096)
    } finally {
      fs.closeSync(fd)
    }
  },
)

test.serial('without the native export (off Linux) every form throws a SystemError ENOSYS', async (t) => {
  const { native } = require('../lib/native') as { native: { fileFallocate?: unknown } }
  const saved = native.fileFallocate
  delete native.fileFallocate
  try {
    for (const f of [punchHole, zeroRange]) {
      await failsWith(t, f(0, 0, 1), 'ENOSYS', 'fallocate', /^ENOSYS: fallocate\(2\) .*needs Linux; this is \w+$/)
    }
    for (const f of [punchHoleSync, zeroRangeSync]) {
      const e = t.throws(() => f(0, 0, 1), { instanceOf: SystemError, code: 'ENOSYS', message: /needs Linux/ })
      t.is(e?.syscall, 'fallocate')
    }
  } finally {
    if (saved !== undefined) native.fileFallocate = saved
  }
  if (process.platform === 'linux') t.is(typeof native.fileFallocate, 'function')
  else t.is(native.fileFallocate, undefined, 'the addon has no fallocate off Linux')
})

/** `p` rejects with a SystemError for `code`, as Node's fs errors have it (`errno` negative). */
async function failsWith(
  t: ExecutionContext,
  p: Promise<unknown>,
  code: Extract<keyof typeof errno, `E${string}`>,
  syscall: SystemError['syscall'],
  message: RegExp,
) {
  const e = await p.then(
    () => null,
    (x: unknown) => x,
  )
  t.true(e instanceof SystemError, `a SystemError: ${String(e)}`)
  t.true(e instanceof VirtioQueueError)
  const f = e as SystemError
  t.is(f.code, code)
  t.is(f.errno, -errno[code])
  t.true(f.errno < 0)
  t.is(f.syscall, syscall)
  t.regex(f.message, message)
}

function pipe(): [number, number] {
  // A FIFO opened read-write does not block, and fallocate on it is ESPIPE like a pipe's.
  const dir = fs.mkdtempSync(`${os.tmpdir()}/vq-fifo-`)
  const fifo = `${dir}/fifo`
  execFileSync('mkfifo', [fifo])
  const r = fs.openSync(fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK)
  const w = fs.openSync(fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK)
  fs.rmSync(dir, { recursive: true })
  return [r, w]
}
