// The command line of `npm run vhost-user-blk` (vhost-user.ts).
import { parseArgs } from 'node:util'

import type { BlkIoMode } from './io-mode'
import { UsageError } from './options'

export const VHOST_USER_HELP = `Usage: npm run vhost-user-blk -- --socket PATH --disk FILE [options]

Serves FILE as a virtio-blk disk to a vhost-user frontend (QEMU's
vhost-user-blk-pci) connecting on the Unix socket PATH. Frontends may come and go:
the process keeps serving the same FILE until SIGINT or SIGTERM, then finishes the
requests in flight, flushes FILE (fdatasync) and exits 0.

Options:
  --socket PATH   Unix socket to listen on (refused if a live listener has it)
  --disk FILE     raw disk image; must exist unless --size is given
  --size MIB      create FILE (sparse) with this size in MiB when it does not exist
  --read-only     offer VIRTIO_BLK_F_RO: writes, DISCARD and WRITE_ZEROES are IOERR
  --queues N      request queues, 1 to 64 (VIRTIO_BLK_F_MQ above 1; default 1)
  --serial ID     the GET_ID answer, up to 20 bytes (default virtio-queue-blk)
  --io MODE       where each queue's file I/O runs: sync (on the event loop, as each
                  request is popped), threads (each pop's I/O as one batch on libuv's
                  threadpool, its requests answered together when it returns) or auto
                  (sync while pops find one request at a time, threads once they find
                  more; the default)
  --heap-stats S  every S seconds, and when a frontend connects or leaves, force a
                  garbage collection and print a line "heap-stats {json}": heap
                  after GC, RSS, bytes allocated, collections (heap-stats.ts)
  -h, --help      this help

Exit status: 0 after a signal; 1 when the socket cannot be listened on;
2 for bad options or a refused disk.`

export interface VhostUserOptions {
  help: boolean
  socket: string
  disk: string
  /** Bytes for a FILE that does not exist (null: it must exist). */
  createBytes: number | null
  readOnly: boolean
  queues: number
  serial: string
  /** Seconds between heap-stats lines (null: none). */
  heapStats: number | null
  /** Where file I/O runs (BlkDevice's `io`). */
  io: BlkIoMode
}

const IO_MODES: readonly BlkIoMode[] = ['sync', 'threads', 'auto']

const MAX_QUEUES = 64

/** Parses argv (without node and the script); throws UsageError naming the option. */
export function parseVhostUserOptions(argv: string[]): VhostUserOptions {
  let values: Record<string, string | boolean | undefined>
  try {
    ;({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        socket: { type: 'string' },
        disk: { type: 'string' },
        size: { type: 'string' },
        'read-only': { type: 'boolean' },
        queues: { type: 'string' },
        serial: { type: 'string' },
        'heap-stats': { type: 'string' },
        io: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }))
  } catch (e) {
    throw new UsageError((e as Error).message)
  }
  const help = values.help === true
  const socket = values.socket as string | undefined
  const disk = values.disk as string | undefined
  if (!help && !socket) throw new UsageError('--socket PATH is required')
  if (!help && !disk) throw new UsageError('--disk FILE is required')
  const queues = values.queues === undefined ? 1 : integer('--queues', values.queues as string, 1, MAX_QUEUES)
  const sizeMiB = values.size === undefined ? null : integer('--size', values.size as string, 1, 2 ** 32)
  const heapStats = values['heap-stats'] === undefined ? null : seconds('--heap-stats', values['heap-stats'] as string)
  const io = (values.io ?? 'auto') as BlkIoMode
  if (!IO_MODES.includes(io)) throw new UsageError(`--io: expected ${IO_MODES.join(', ')}, got "${values.io}"`)
  const serial = (values.serial as string | undefined) ?? 'virtio-queue-blk'
  if (Buffer.byteLength(serial, 'utf8') > 20) throw new UsageError(`--serial: at most 20 bytes, got "${serial}"`)
  return {
    help,
    socket: socket ?? '',
    disk: disk ?? '',
    createBytes: sizeMiB === null ? null : sizeMiB * 1024 * 1024,
    readOnly: values['read-only'] === true,
    queues,
    serial,
    heapStats,
    io,
  }
}

function seconds(name: string, text: string): number {
  const n = /^\d+(\.\d+)?$/.test(text) ? Number(text) : Number.NaN
  if (!(n >= 0.01 && n <= 86400)) throw new UsageError(`${name}: expected seconds from 0.01 to 86400, got "${text}"`)
  return n
}

function integer(name: string, text: string, min: number, max: number): number {
  const n = /^\d+$/.test(text) ? Number(text) : Number.NaN
  if (!Number.isSafeInteger(n) || n < min || n > max)
    throw new UsageError(`${name}: expected an integer from ${min} to ${max}, got "${text}"`)
  return n
}
