// Type test: the hand-written public typings (index.d.ts) describe what
// src/index.ts really exports. tsc fails here when the two diverge.
import type * as api from '../../index'
import * as impl from '../../src/index'

export const exportsMatchTypings: typeof api = impl

type Equal<A, B> = (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false
type Assert<T extends true> = T
/** The public members of a src/ class that index.d.ts does not declare, minus the named internals. */
type Undeclared<Impl, Decl, Internal extends PropertyKey = never> = Exclude<keyof Impl, keyof Decl | Internal>

// No runtime export missing from the typings (the assignment above checks the other way).
export type ValueKeys = Assert<Equal<keyof typeof impl, keyof typeof api>>
// No public member left undeclared: a new method must be typed and documented, and the
// `@internal` members each class keeps for the others are listed here by name.
export type M1 = Assert<
  Equal<
    Undeclared<impl.GuestMemory, api.GuestMemory, 'handle' | 'covers' | 'resolve' | 'view' | 'checkAttached'>,
    never
  >
>
export type M2 = Assert<Equal<Undeclared<impl.Queue, api.Queue, 'handle'>, never>>
export type M3 = Assert<Equal<Undeclared<impl.QueueGuard, api.QueueGuard>, never>>
export type M4 = Assert<Equal<Undeclared<impl.AvailIter, api.AvailIter>, never>>
export type M5 = Assert<Equal<Undeclared<impl.DescriptorChain, api.DescriptorChain>, never>>
export type M6 = Assert<Equal<Undeclared<impl.Descriptor, api.Descriptor>, never>>
type CursorInternals = 'mem' | 'words' | 'end' | 'dir' | 'total' | 'at' | 'offset' | 'consumed'
export type M7 = Assert<Equal<Undeclared<impl.Reader, api.Reader, CursorInternals>, never>>
export type M8 = Assert<Equal<Undeclared<impl.Writer, api.Writer, CursorInternals>, never>>
export type M9 = Assert<Equal<Undeclared<impl.ChainBatch, api.ChainBatch, 'grow'>, never>>
export type M10 = Assert<Equal<Undeclared<impl.UsedBatch, api.UsedBatch>, never>>
export type M11 = Assert<Equal<Undeclared<impl.VirtioQueueError, api.VirtioQueueError>, never>>
// Static members of the classes with public statics.
export type S1 = Assert<
  Equal<Undeclared<typeof impl.ChainBatch, typeof api.ChainBatch, 'prototype' | 'wordsOf'>, never>
>
export type S2 = Assert<
  Equal<Undeclared<typeof impl.GuestMemory, typeof api.GuestMemory, 'prototype' | 'handleOf'>, never>
>
export type S4 = Assert<
  Equal<Undeclared<typeof impl.UsedBatch, typeof api.UsedBatch, 'prototype' | 'take' | 'is'>, never>
>
export type S3 = Assert<Equal<Undeclared<typeof impl.Queue, typeof api.Queue, 'prototype'>, never>>
