import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';

import { scenarioFor } from './scenarios';

/**
 * A tiny processing centre reached by the terminal simulator in offline mode, through the till's relay.
 * Wire format (ours, not Joinproto): each message is a big-endian u32 length and a JSON body.
 * Request `{ op, amount?, ref }`; answer `{ code, text, authCode?, rrn?, padding? }`.
 */
export interface HostRequest {
  readonly op: string;
  readonly amount?: number;
  readonly ref: string;
}
export interface HostAnswer {
  readonly code: string;
  readonly text: string;
  readonly authCode?: string;
  readonly rrn?: string;
  /** Filler to make answers span many 93 chunks. */
  readonly padding?: string;
}

export interface ProcessingHostOptions {
  /** Size of the filler added to every answer (default 0). */
  readonly answerPaddingBytes?: number;
}

export function encodeHostMessage(body: unknown): Buffer {
  const json = Buffer.from(JSON.stringify(body), 'utf8');
  const header = Buffer.alloc(4);
  header.writeUInt32BE(json.length, 0);
  return Buffer.concat([header, json]);
}

/** Returns the body of a complete message at the start of `buffer`, or undefined if incomplete. */
export function readHostMessage(buffer: Uint8Array): { body: Buffer; size: number } | undefined {
  if (buffer.length < 4) return undefined;
  const length = Buffer.from(buffer.buffer, buffer.byteOffset, buffer.byteLength).readUInt32BE(0);
  if (buffer.length < 4 + length) return undefined;
  return { body: Buffer.from(buffer.subarray(4, 4 + length)), size: 4 + length };
}

export class ProcessingHostSimulator {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private sequence = 0;
  /** Requests received, in order. */
  readonly requests: HostRequest[] = [];

  constructor(private readonly options: ProcessingHostOptions = {}) {
    this.server = createServer((socket) => this.onConnection(socket));
  }

  async listen(port = 0, host = '127.0.0.1'): Promise<{ host: string; port: number }> {
    await new Promise<void>((resolve) => this.server.listen(port, host, resolve));
    const address = this.server.address() as AddressInfo;
    return { host, port: address.port };
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private onConnection(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let buffer: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (let message = readHostMessage(buffer); message; message = readHostMessage(buffer)) {
        buffer = buffer.subarray(message.size);
        socket.write(this.answer(JSON.parse(message.body.toString('utf8')) as HostRequest));
      }
    });
  }

  private answer(request: HostRequest): Buffer {
    this.requests.push(request);
    const scenario = scenarioFor(request.amount);
    if (scenario.kind === 'bad-host-answer') return Buffer.from([0, 0, 0, 3, 0xff, 0xfe, 0xfd]);
    this.sequence += 1;
    const padding = 'P'.repeat(this.options.answerPaddingBytes ?? 0);
    const answer: HostAnswer =
      scenario.kind === 'decline'
        ? { code: scenario.code, text: scenario.text, padding }
        : {
            code: '000',
            text: 'Successful transaction',
            authCode: String(100000 + this.sequence),
            rrn: String(this.sequence).padStart(12, '0'),
            padding,
          };
    return encodeHostMessage(answer);
  }
}
