// Failures as drivers classify them: where a failure happens is where it is
// known whether another try can help. The agent reports the class and code
// as they are (ResourceError); the server acts on them, never on the text.
import { ErrorClass, type ResourceError } from '../fleet/protocol.ts';

export class ResourceFailure extends Error {
  readonly class: ErrorClass;
  readonly code: string;
  constructor(cls: ErrorClass, code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.class = cls;
    this.code = code;
  }
}

/** Retrying, here or on another host, cannot help (a broken image). */
export const permanent = (code: string, message: string, cause?: unknown) => new ResourceFailure(ErrorClass.permanent, code, message, { cause });
/** What the user asked for cannot be done (a spec the driver refuses). */
export const userError = (code: string, message: string, cause?: unknown) => new ResourceFailure(ErrorClass.user, code, message, { cause });
/** The host's trouble: another try may work. */
export const transient = (code: string, message: string, cause?: unknown) => new ResourceFailure(ErrorClass.transient, code, message, { cause });

const MAX_MESSAGE = 2000;

/** The wire form of any error: unclassified errors are the host's (transient, `fallbackCode`). */
export function toResourceError(err: unknown, fallbackCode = 'host_failure'): ResourceError {
  let message = err instanceof Error ? err.message : String(err);
  if (message.length > MAX_MESSAGE) message = `${message.slice(0, MAX_MESSAGE)}…`;
  if (err instanceof ResourceFailure) return { class: err.class, code: err.code, message };
  return { class: ErrorClass.transient, code: fallbackCode, message };
}
