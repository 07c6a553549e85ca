// The driver's option, buffer and result types are declared once, in driver.d.ts.
export type {
  DriverBuffer,
  IndirectTablePlacement,
  AddChainOptions,
  UsedElement,
  IndirectTableAllocator,
  SplitQueueDriverOptions,
  RawDescriptor,
  RawUsedElem,
} from '../../driver'
