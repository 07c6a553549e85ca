// Type test: the hand-written public typings (index.d.ts) describe what
// src/index.ts really exports. tsc fails here when the two diverge.
import type * as api from '../../index'
import * as impl from '../../src/index'

export const exportsMatchTypings: typeof api = impl
