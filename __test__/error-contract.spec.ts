// The documented error contract: every error the package throws on purpose has a `code`;
// guest address errors are VirtioQueueErrors and RangeErrors; messages name real bounds.
import { constants } from 'node:os'
import test from 'ava'

import { ChainBatch, GuestMemory, Queue, SystemError, VirtioQueueError } from '..'
import { GuestAllocator, SplitQueueDriver, splitQueueLayout } from '../driver'

test('guest address errors are RangeErrors and VirtioQueueErrors with code InvalidGuestAddress', (t) => {
  const m = GuestMemory.fromRanges([[0, 0x1000]])
  const e = t.throws(() => m.readU32(0x1000))
  t.true(e instanceof RangeError)
  t.true(e instanceof VirtioQueueError)
  t.is((e as VirtioQueueError).code, 'InvalidGuestAddress')
  t.is(e?.name, 'VirtioQueueError')
  t.regex(e!.message, /0x1000/)
  // Other errors are not taken for VirtioQueueErrors, and ordinary ones are not RangeErrors.
  t.false(new RangeError('x') instanceof VirtioQueueError)
  t.false(Object.assign(new RangeError('x'), { code: 'InvalidGuestAddress' }) instanceof VirtioQueueError)
  t.false(new VirtioQueueError('x', 'QueueNotReady') instanceof RangeError)
})

test('memory.read of a huge length is an address error naming the range, not an allocator message', (t) => {
  const m = GuestMemory.fromRanges([[0, 0x1000]])
  const e = t.throws(() => m.read(0, 2 ** 40), { instanceOf: VirtioQueueError, code: 'InvalidGuestAddress' })
  t.regex(e!.message, /guest address 0x0 \(1099511627776 bytes\)/)
  t.notRegex(e!.message, /size/)
})

test('new ChainBatch(1n): a TypeError with a code, naming maxChains', (t) => {
  t.throws(() => new ChainBatch(1n as never), {
    instanceOf: TypeError,
    code: 'ERR_INVALID_ARG_TYPE',
    message: /"maxChains"/,
  })
  t.throws(() => new ChainBatch(4, 1n as never), { code: 'ERR_INVALID_ARG_TYPE', message: /"maxDescriptors"/ })
  t.is(new ChainBatch(4).words.length, ChainBatch.HEADER_WORDS + 4 * ChainBatch.CHAIN_WORDS + 16 * 4)
})

test('range messages name the real bounds', (t) => {
  const m = GuestMemory.fromRanges([[0, 0x1000]])
  for (const v of [-8, 1.5]) {
    const e = t.throws(() => new Queue(m, v), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
    t.regex(e!.message, /power of two from 1 to 32768/)
    t.notRegex(e!.message, /9007199254740991/)
  }
  const g = new Queue(m, 64).lockWithMemory()
  const e = t.throws(() => g.setSize(-1), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  t.regex(e!.message, /power of two from 1 to 64/)
  t.notRegex(e!.message, /9007199254740991/)
})

test('the driver simulator: argument errors carry ERR_INVALID_ARG_TYPE / ERR_OUT_OF_RANGE', (t) => {
  const m = GuestMemory.fromRanges([[0, 0x10000]])
  t.throws(() => splitQueueLayout(-1, 16), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => splitQueueLayout('0' as never, 16), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => new GuestAllocator(0, 3.5), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => new SplitQueueDriver(m, null as never), { instanceOf: TypeError, code: 'ERR_INVALID_ARG_TYPE' })
  const d = new SplitQueueDriver(m, splitQueueLayout(0x1000, 16))
  t.throws(() => d.addChain([]), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => d.addChain([{ addr: -1, len: 1 }]), { instanceOf: RangeError, code: 'ERR_OUT_OF_RANGE' })
  t.throws(
    () =>
      d.addChain([
        { addr: 0x8000, len: 1, writable: true },
        { addr: 0x9000, len: 1 },
      ]),
    {
      instanceOf: TypeError,
      code: 'ERR_INVALID_ARG_TYPE',
    },
  )
})

test('SystemError names errnos as Node does, but EOPNOTSUPP for the number Linux shares with ENOTSUP', (t) => {
  const { systemError, needsLinux } = require('../lib/errors') as typeof import('../src/errors')
  const e = systemError(-constants.errno.EBADF, 'preadv', 'preadv of 1 bytes at offset 0 of fd 9')
  t.true(e instanceof SystemError && e instanceof VirtioQueueError && e instanceof Error)
  t.like(e, { name: 'SystemError', code: 'EBADF', errno: -constants.errno.EBADF, syscall: 'preadv' })
  t.is(e.message, 'EBADF: bad file descriptor, preadv of 1 bytes at offset 0 of fd 9')
  // libuv calls this number ENOTSUP "on socket"; for a file it is the file system's refusal.
  const n = systemError(-constants.errno.EOPNOTSUPP, 'fallocate', 'op')
  t.like(n, { code: 'EOPNOTSUPP', errno: -constants.errno.EOPNOTSUPP })
  t.is(n.message, 'EOPNOTSUPP: operation not supported by the file system, op')
  // A number libuv does not know keeps it, in the shape of a name.
  t.like(systemError(-100000, 'pwrite', 'op'), {
    code: 'E100000',
    errno: -100000,
    message: 'E100000: unknown system error 100000, op',
  })
  const u = needsLinux('pwritev', 'pwritev(2) on guest memory')
  t.like(u, { code: 'ENOSYS', errno: -constants.errno.ENOSYS, syscall: 'pwritev' })
  t.is(u.message, `ENOSYS: pwritev(2) on guest memory needs Linux; this is ${process.platform}`)
  // Ordinary errors with the same properties are not SystemErrors.
  t.false(Object.assign(new Error('x'), { code: 'EBADF', errno: -9, syscall: 'preadv' }) instanceof SystemError)
  t.false(new VirtioQueueError('x', 'QueueNotReady') instanceof SystemError)
})
