import { systemClock, type Clock } from './clock';
import { decodeMessage, decodeResponse, encodeMessage, type SsiResponse } from './codec';
import { SsiEcrError } from './errors';
import { FrameDecoder } from './framing';
import type { JsonObject } from './json';
import type { ByteTransport } from './transport';

interface Pending {
  readonly method: string;
  resolve(response: SsiResponse): void;
  reject(error: SsiEcrError): void;
}

/**
 * One request at a time over one transport (the protocol has no correlation id: a response is matched
 * by being the next frame, and its `method` must echo the request or be "Unknown", spec 5.1).
 */
export class SsiEcrChannel {
  private readonly decoder: FrameDecoder;
  private pending: Pending | undefined;
  private closedWith: SsiEcrError | undefined;
  private endedAt: number | undefined;

  constructor(
    private readonly transport: ByteTransport,
    maxFrameBytes?: number,
    private readonly clock: Clock = systemClock,
  ) {
    this.decoder = new FrameDecoder({ maxFrameBytes });
    transport.onData((chunk) => this.onData(chunk));
    transport.onClose((error) => {
      this.endedAt ??= clock.now();
      this.closedWith = new SsiEcrError('CONNECTION_CLOSED', `connection closed${error ? `: ${error.message}` : ''}`);
      this.failPending(this.closedWith);
    });
  }

  get isOpen(): boolean {
    return this.closedWith === undefined;
  }

  /** When the connection ended (closed by us, by the peer, or failed); undefined while it is open. */
  get closedAt(): number | undefined {
    return this.endedAt;
  }

  /** Sends one message and resolves with the next response frame. The caller applies timeouts. */
  send(message: JsonObject): Promise<SsiResponse> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    if (this.pending) {
      return Promise.reject(new SsiEcrError('OPERATION_IN_PROGRESS', 'a request is already waiting for its response'));
    }
    const method = String(message.method);
    return new Promise<SsiResponse>((resolve, reject) => {
      this.pending = { method, resolve, reject };
      try {
        this.transport.write(encodeMessage(message));
      } catch (error) {
        this.pending = undefined;
        reject(error instanceof SsiEcrError ? error : new SsiEcrError('CONNECTION_CLOSED', 'write failed'));
      }
    });
  }

  /** Forgets a request whose response will never be awaited (after a timeout); the channel is closed. */
  abandon(): void {
    this.pending = undefined;
    this.close();
  }

  close(): void {
    // From here on nothing more is written; the transport may report its close a little later.
    this.endedAt ??= this.clock.now();
    this.transport.close();
  }

  private onData(chunk: Uint8Array): void {
    for (const event of this.decoder.push(chunk)) {
      if (event.kind === 'garbage') {
        if (event.error.code !== 'UNEXPECTED_BYTES') {
          this.failPending(
            new SsiEcrError('UNEXPECTED_RESPONSE', `bad frame from terminal: ${event.error.message}`, {
              context: { frameError: event.error.code },
            }),
          );
        }
        continue;
      }
      const pending = this.pending;
      if (!pending) continue; // unsolicited frame: nothing is waiting for it
      this.pending = undefined;
      try {
        const response = decodeResponse(decodeMessage(event.frame));
        if (response.method !== pending.method && response.method !== 'Unknown') {
          throw new SsiEcrError('UNEXPECTED_RESPONSE', `expected a ${pending.method} response, got ${response.method}`);
        }
        pending.resolve(response);
      } catch (error) {
        pending.reject(
          error instanceof SsiEcrError && error.code === 'UNEXPECTED_RESPONSE'
            ? error
            : new SsiEcrError('UNEXPECTED_RESPONSE', `unreadable ${pending.method} response: ${(error as Error).message}`),
        );
      }
    }
  }

  private failPending(error: SsiEcrError): void {
    const pending = this.pending;
    this.pending = undefined;
    pending?.reject(error);
  }
}
