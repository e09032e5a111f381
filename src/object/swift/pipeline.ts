// The Swift API's middleware, in the order they wrap the core handlers (the
// first listed sees the request first), as Swift's proxy-server pipeline
// orders its filters. Each feature is its own module in this folder exporting
// a SwiftMiddleware factory; add it here with one line.
import type { SwiftContext, SwiftMiddleware } from './request.ts';

export function swiftMiddleware(_ctx: SwiftContext): SwiftMiddleware[] {
  return [];
}
