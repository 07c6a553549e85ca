// Queue snapshots: the crate's QueueState as a plain, JSON-serialisable object.
import { u64BigInt, u64Exact } from './address'
import { rangeError, typeError, VirtioQueueError } from './errors'
import { STATE_WORDS } from './native'

/**
 * The crate's `QueueState`, camelCased: a plain, JSON-serialisable snapshot. Ring addresses
 * are numbers, or decimal strings when above Number.MAX_SAFE_INTEGER.
 */
export interface QueueState {
  /** The largest size the device offers. */
  maxSize: number
  /** Index of the next avail ring entry to pop. */
  nextAvail: number
  /** Index of the next used ring entry to fill. */
  nextUsed: number
  /** Whether VIRTIO_F_RING_EVENT_IDX handling is on. */
  eventIdxEnabled: boolean
  /** The size the driver chose. */
  size: number
  /** Whether the driver marked the queue ready. */
  ready: boolean
  /** Guest address of the descriptor table. */
  descTable: number | string
  /** Guest address of the available ring. */
  availRing: number | string
  /** Guest address of the used ring. */
  usedRing: number | string
}

export function decodeState(w: Uint32Array): QueueState {
  const addr = (i: number): number | string => {
    const v = u64Exact(w, i)
    return v >= 0 ? v : u64BigInt(w, i).toString()
  }
  return {
    maxSize: w[0]!,
    nextAvail: w[1]!,
    nextUsed: w[2]!,
    eventIdxEnabled: w[3] !== 0,
    size: w[4]!,
    ready: w[5] !== 0,
    descTable: addr(6),
    availRing: addr(8),
    usedRing: addr(10),
  }
}

export function encodeState(state: QueueState): Uint32Array {
  if (state === null || typeof state !== 'object') throw typeError('state', 'a QueueState object', state)
  const w = new Uint32Array(STATE_WORDS)
  const u16 = (name: keyof QueueState, i: number) => {
    const v = state[name]
    if (typeof v !== 'number') throw typeError(`state.${name}`, 'of type number', v)
    if (!Number.isInteger(v) || v < 0 || v > 0xffff)
      throw rangeError(`state.${name}`, `it must be an integer from 0 to 65535; received ${v}`)
    w[i] = v
  }
  const bool = (name: keyof QueueState, i: number) => {
    const v = state[name]
    if (typeof v !== 'boolean') throw typeError(`state.${name}`, 'of type boolean', v)
    w[i] = v ? 1 : 0
  }
  const addr = (name: keyof QueueState, i: number) => {
    const v = state[name]
    let big: bigint
    if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) big = BigInt(v)
    else if (typeof v === 'string' && /^(0|[1-9][0-9]*|0x[0-9a-fA-F]+)$/.test(v)) big = BigInt(v)
    else if (typeof v === 'bigint' && v >= 0n) big = v
    else
      throw new VirtioQueueError(
        `state.${name} must be a non-negative integer address (number or decimal string); received ${String(v)}`,
        'InvalidState',
      )
    if (big > 0xffffffffffffffffn) throw new VirtioQueueError(`state.${name} does not fit in 64 bits`, 'InvalidState')
    w[i] = Number(big & 0xffffffffn)
    w[i + 1] = Number(big >> 32n)
  }
  u16('maxSize', 0)
  u16('nextAvail', 1)
  u16('nextUsed', 2)
  bool('eventIdxEnabled', 3)
  u16('size', 4)
  bool('ready', 5)
  addr('descTable', 6)
  addr('availRing', 8)
  addr('usedRing', 10)
  return w
}
