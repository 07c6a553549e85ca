// Compile-time check that the typings tsc emits from src/file (lib/file/index.d.ts, which
// virtio-queue/file resolves to) match src/file. `tsc -p __test__/tsconfig.json --noEmit`
// fails when they diverge.
import type * as decl from '../../lib/file/index'
import type * as stub from '../../file'
import type * as impl from '../../src/file/index'
import type * as main from '../../lib/index'

type Equal<A, B> = (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false
type Assert<T extends true> = T

export type ValueKeys = Assert<Equal<keyof typeof impl, keyof typeof decl>>
export type StubKeys = Assert<Equal<keyof typeof stub, keyof typeof decl>>
export type F1 = Assert<Equal<typeof impl.punchHole, typeof decl.punchHole>>
export type F2 = Assert<Equal<typeof impl.punchHoleSync, typeof decl.punchHoleSync>>
export type F3 = Assert<Equal<typeof impl.zeroRange, typeof decl.zeroRange>>
export type F4 = Assert<Equal<typeof impl.zeroRangeSync, typeof decl.zeroRangeSync>>
export type ErrorMembers = Assert<Equal<keyof impl.SystemError, keyof decl.SystemError>>
export type T1 = Assert<Equal<impl.ZeroRangeMethod, decl.ZeroRangeMethod>>
export type T2 = Assert<Equal<impl.FileOffset, decl.FileOffset>>
export type T3 = Assert<Equal<impl.SystemCall, decl.SystemCall>>
export type T4 = Assert<Equal<impl.SystemErrorCode, decl.SystemErrorCode>>
// virtio-queue/file's SystemError is the main entry's: one class, caught the same way.
export type SameClass = Assert<Equal<typeof decl.SystemError, typeof main.SystemError>>
